"""A rebuild's refold, in processes of their own: partitions of a read model folded
from offset 0 into fresh stores, each up to the offsets its live store had when the
rebuild began.

    python -m agents.refold <fold name> '<json: [{"partition", "path", "until"}, ...]>'

`FoldRunner.rebuild` (agents/folds.py) asks for one partition and takes over where
the refold ends: the last stretch, the comparison and the switch happen in the
worker. The refold is nearly all of a rebuild's time and pure CPU, so it runs
beside the worker, whose loop goes on serving and folding. `shop rebuild` asks for
every partition at once: the requests of one fold that arrive within GATHER_SECONDS
are shared among one process per core, each folding its partitions through one
consumer (a process takes about half a second to start: one per partition spent
more time starting than folding).

The process imports the pure folds and nothing of the worker (no App, no agents).
Settings come from the environment, as the worker's do. It prints a JSON line
`{"partition": p, "read": n, "skipped": m, "end": e}` per partition at most every
REPORT_EVERY s and once when that partition is done, and exits 0 once every
partition reached its offsets; its stores have no log (`durable=False`) and are
sealed before it says a partition is done.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.kafka_clients import started_consumer
from app.settings import settings
from tables.partition_store import PartitionStore
from tables.rebuildable import fold_named

REPORT_EVERY = 0.5
FETCH_WAIT_MS = 100
GATHER_SECONDS = 0.2
"""How long the first request of a fold waits for the others of the same rebuild."""
STDERR_TAIL = 2000
"""Characters of a failed refold's stderr kept in the rebuild's error."""


@dataclass
class Counts:
    read: int = 0
    skipped: int = 0
    end: int = 0


Progress = Callable[[Counts], Awaitable[None]]


@dataclass
class _Request:
    partition: int
    path: Path
    until: dict[str, int]
    progress: Progress
    done: asyncio.Future[Counts] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _future() -> asyncio.Future[Counts]:
    return asyncio.get_running_loop().create_future()


_gathering: dict[str, list[_Request]] = {}
"""Fold name -> the requests waiting to be shared among processes."""


async def refold(
    fold_name: str, partition: int, path: Path, until: dict[str, int], progress: Progress
) -> Counts:
    """Refold one partition in a refold process (with the other partitions of the fold
    asked for meanwhile); `progress` is called with each of its reports. Raises
    RuntimeError when the process fails."""
    request = _Request(partition, path, until, progress)
    waiting = _gathering.setdefault(fold_name, [])
    waiting.append(request)
    if len(waiting) == 1:
        asyncio.get_running_loop().call_later(GATHER_SECONDS, _launch, fold_name)
    return await request.done


def _launch(fold_name: str) -> None:
    requests = _gathering.pop(fold_name)
    processes = min(len(requests), max(1, os.cpu_count() or 1))
    for n in range(processes):
        task = asyncio.ensure_future(_run(fold_name, requests[n::processes]))
        # its failure reaches each of its requests; this only marks it seen
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def _run(fold_name: str, requests: list[_Request]) -> None:
    by_partition = {r.partition: r for r in requests}
    work = [{"partition": r.partition, "path": str(r.path), "until": r.until} for r in requests]
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agents.refold",
            fold_name,
            json.dumps(work),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None and child.stderr is not None
        errors = asyncio.ensure_future(child.stderr.read())
        last: dict[int, Counts] = {}
        try:
            async for line in child.stdout:
                report = json.loads(line)
                partition, done = report.pop("partition"), report.pop("done")
                last[partition] = counts = Counts(**report)
                request = by_partition[partition]
                if done:
                    if not request.done.done():
                        request.done.set_result(counts)
                else:
                    await request.progress(counts)
            status = await child.wait()
        except BaseException:  # cancelled (the worker stops): the process goes with it
            if child.returncode is None:
                child.kill()
                await child.wait()
            errors.cancel()
            raise
        stderr = (await errors).decode(errors="replace")
        if status != 0:
            raise RuntimeError(
                f"the refold of {fold_name} partitions {sorted(by_partition)} exited {status}: "
                f"{stderr[-STDERR_TAIL:]}"
            )
        missing = [r.partition for r in requests if not r.done.done()]
        if missing:
            raise RuntimeError(f"the refold of {fold_name} ended without partitions {missing}")
    except BaseException as error:
        for request in requests:
            if request.done.done():
                continue
            if isinstance(error, Exception):
                request.done.set_exception(error)
            else:
                request.done.cancel()
        raise


# --- the refold process ------------------------------------------------------------


class _Partition:
    def __init__(self, partition: int, path: Path, until: dict[str, int]) -> None:
        self.partition = partition
        self.store = PartitionStore(path, durable=False)
        self.until = until
        self.counts = Counts()
        self.finished = False

    @property
    def behind(self) -> bool:
        return any(self.store.offset(topic) < offset for topic, offset in self.until.items())

    def say(self, consumer: AIOKafkaConsumer, done: bool = False) -> None:
        tps = [TopicPartition(topic, self.partition) for topic in self.until]
        self.counts.end = sum(consumer.highwater(tp) or 0 for tp in tps)
        line = {"partition": self.partition, "done": done, **self.counts.__dict__}
        print(json.dumps(line), flush=True)


async def _refold_here(fold_name: str, work: list[dict[str, Any]]) -> None:
    fold = fold_named(fold_name)
    parts = {w["partition"]: _Partition(w["partition"], Path(w["path"]), w["until"]) for w in work}
    consumer = await started_consumer(group_id=None)
    reported = 0.0
    try:
        tps = [TopicPartition(t, p.partition) for p in parts.values() for t in p.until]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, parts[tp.partition].store.offset(tp.topic))
        behind = [p for p in parts.values() if p.behind]
        for part in parts.values():
            if not part.behind:  # nothing to fold (an empty partition)
                _finish(part, consumer)
        while behind:
            batches = await consumer.getmany(
                timeout_ms=FETCH_WAIT_MS, max_records=settings.fold_max_batch
            )
            by_partition: dict[int, list[Any]] = {}
            for tp, records in batches.items():
                by_partition.setdefault(tp.partition, []).extend(records)
            for partition, records in by_partition.items():
                part = parts[partition]
                folded = fold.fold(records, part.store)
                part.store.write(folded.rows, {r.topic: r.offset + 1 for r in records})
                part.counts.read += len(records) - len(folded.failures)
                part.counts.skipped += len(folded.failures)  # the live fold dead-lettered these
                if not part.behind:
                    consumer.pause(*(TopicPartition(t, partition) for t in part.until))
                    _finish(part, consumer)
            behind = [p for p in behind if p.behind]
            if time.monotonic() - reported > REPORT_EVERY:
                reported = time.monotonic()
                for part in behind:
                    part.say(consumer)
    finally:
        for part in parts.values():
            if not part.finished:
                part.store.close()
        await consumer.stop()


def _finish(part: _Partition, consumer: AIOKafkaConsumer) -> None:
    """Seal and close the store (the worker opens it next: RocksDB locks it to one
    process), then say so."""
    part.store.seal()
    part.store.close()
    part.finished = True
    part.say(consumer, done=True)


def main(argv: list[str]) -> int:
    fold_name, work = argv
    asyncio.run(_refold_here(fold_name, json.loads(work)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
