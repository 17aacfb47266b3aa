"""A rebuild's refold, in a process of its own: one partition of a read model folded
from offset 0 into a fresh store, up to the offsets its live store had when the
rebuild began.

    python -m agents.refold <fold name> <partition> <store path> <topic>=<offset> ...

`FoldRunner.rebuild` (agents/folds.py) starts it and takes over where it ends: the
last stretch, the comparison and the switch happen in the worker. The refold is
nearly all of a rebuild's time and pure CPU, so here it runs on a core of its own
while the worker's loop goes on serving and folding; a worker runs as many at a time
as the machine has cores (`refold` below).

It imports the pure folds and nothing of the worker (no App, no agents: 0.4 s to
start). Settings come from the environment, as the worker's do. It prints a JSON
line `{"read": n, "skipped": m, "end": e}` at most every REPORT_EVERY s and once at
the end, and exits 0 once every topic reached its offset; the store has no log
(`durable=False`), and is sealed before the exit.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.kafka_clients import PARTITION_FETCH_BYTES, client_options
from app.settings import settings
from tables.partition_store import PartitionStore
from tables.rebuildable import fold_named

REPORT_EVERY = 0.5
FETCH_WAIT_MS = 100
STDERR_TAIL = 2000
"""Characters of a failed refold's stderr kept in the rebuild's error."""

_SLOTS = asyncio.Semaphore(max(1, os.cpu_count() or 1))
"""Refolds running at a time on this worker: one per core."""


@dataclass
class Counts:
    read: int = 0
    skipped: int = 0
    end: int = 0


async def refold(
    fold_name: str,
    partition: int,
    path: Path,
    until: dict[str, int],
    progress: Callable[[Counts], Awaitable[None]],
) -> Counts:
    """Run the refold process for one partition (waiting for a free core first);
    `progress` is called with each line it prints. Raises RuntimeError when it fails."""
    async with _SLOTS:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agents.refold",
            fold_name,
            str(partition),
            str(path),
            *(f"{topic}={offset}" for topic, offset in until.items()),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None and child.stderr is not None
        errors = asyncio.ensure_future(child.stderr.read())
        counts = Counts()
        try:
            async for line in child.stdout:
                counts = Counts(**json.loads(line))
                await progress(counts)
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
                f"the refold of {fold_name} partition {partition} exited {status}: "
                f"{stderr[-STDERR_TAIL:]}"
            )
        return counts


async def _refold_here(fold_name: str, partition: int, path: Path, until: dict[str, int]) -> None:
    fold = fold_named(fold_name)
    store = PartitionStore(path, durable=False)
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        **client_options(),
    )
    await consumer.start()
    counts = Counts()
    tps = [TopicPartition(topic, partition) for topic in until]
    reported = 0.0
    try:
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, store.offset(tp.topic))
        while any(store.offset(topic) < offset for topic, offset in until.items()):
            batches = await consumer.getmany(
                timeout_ms=FETCH_WAIT_MS, max_records=settings.fold_max_batch
            )
            records: list[Any] = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            folded = fold.fold(records, store)
            store.write(folded.rows, {r.topic: r.offset + 1 for r in records})
            counts.read += len(records) - len(folded.failures)
            counts.skipped += len(folded.failures)  # the live fold dead-lettered these
            if time.monotonic() - reported > REPORT_EVERY:
                reported = time.monotonic()
                counts.end = sum(consumer.highwater(tp) or 0 for tp in tps)
                _say(counts)
        store.seal()
    finally:
        store.close()
        await consumer.stop()
    counts.end = sum(consumer.highwater(tp) or 0 for tp in tps)
    _say(counts)


def _say(counts: Counts) -> None:
    print(json.dumps(counts.__dict__), flush=True)


def main(argv: list[str]) -> int:
    fold_name, partition, path, *targets = argv
    until = {topic: int(offset) for topic, _, offset in (t.rpartition("=") for t in targets)}
    asyncio.run(_refold_here(fold_name, int(partition), Path(path), until))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
