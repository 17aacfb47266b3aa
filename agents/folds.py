"""Read models on the engine: event topics folded into partition stores that keep
their own offsets.

A fold is a pure `BatchFold` (tables/): per partition batch (agents/engine.py),
folded in memory, its messages for other views sent and its bad records
dead-lettered (both acked first), then its rows and each topic's next offset
written in one RocksDB WriteBatch (tables/partition_store.py). After any crash
the fold resumes from the stored offsets; an empty store folds from offset 0
(the event topics are the changelog). A fold that keeps no rows (`outputs_only`)
resumes from its progress commit. A partition is rebuilt from offset 0 beside
the live store (by a process of its own, agents/refold.py) and swapped in
(`FoldRunner.rebuild`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TopicT

from agents.dead_letters import GaveUp, bury
from agents.engine import FETCH_WAIT_MS, Reader, partition_of
from agents.refold import Counts, refold
from app import faults
from app.kafka_clients import started_consumer
from app.main import app
from app.settings import settings
from tables.partition_store import PartitionStore
from tables.read_models import BatchFold, LogRecord, Output

log = logging.getLogger(__name__)

FOLDS: dict[str, FoldRunner] = {}
"""Every fold of this worker by name (rebuilds and /ops find them here)."""


class AlreadyRebuilding(RuntimeError):
    """A request for a partition whose rebuild is running (a re-sent request)."""


class NotHere(Exception):
    """The key's partition is not folded on this worker (yet): ask again shortly."""


@dataclass
class Rebuilt:
    """What a rebuild of one partition read and changed."""

    read: int = 0
    skipped: int = 0
    written: int = 0
    deleted: int = 0
    unchanged: int = 0


class FoldRunner(Reader):
    """Runs one BatchFold on the engine over the partitions this worker owns: a batch's
    rows and each topic's next offset go in one RocksDB write.

    `outputs_only`: the fold keeps no rows, its outputs are its effect (the analytics
    facts): it resumes from its progress commit on an empty disk."""

    kind = "folds"

    def __init__(
        self,
        fold: BatchFold,
        *,
        single: bool = False,
        outputs_only: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            fold.name,
            fold.events,
            single=single,
            resumes_from_progress=outputs_only,
            **kwargs,
        )
        self.fold = fold
        self._outputs: dict[str, TopicT] = {}
        self._rebuilding: set[int] = set()
        FOLDS[fold.name] = self

    def store_for(self, key: str) -> PartitionStore:
        """The store holding `key` (the producer's partitioner); NotHere if not open here."""
        return self.store_at(0 if self.single else partition_of(key.encode()))

    def store_at(self, partition: int) -> PartitionStore:
        """The store of `partition`; NotHere if it is not folded here, or catching up."""
        store = self.stores.get(partition)
        if store is None or partition not in self.reading:
            raise NotHere(f"{self.fold.name} partition {partition} is not folded on this worker")
        if partition not in self.caught_up:
            raise NotHere(f"{self.fold.name} partition {partition} is catching up with its log")
        return store

    def standby_for(self, key: str) -> tuple[PartitionStore, int]:
        """The warm standby store holding `key` and the records it trails its log's end by;
        NotHere if this worker does not stand by for the key's partition."""
        partition = partition_of(key.encode())
        store = self.stores.get(partition)
        if store is None or partition not in self.standing_by:
            raise NotHere(f"no standby of {self.fold.name} partition {partition} here")
        lag = 0
        for topic in self.topics:
            end = self._highwater(topic, partition)
            if end is None:
                raise NotHere(f"the standby of {self.fold.name} partition {partition} is starting")
            lag = max(lag, end - store.offset(topic))
        return store, lag

    async def handle(self, partition: int, store: PartitionStore, records: list[Any]) -> None:
        folded = self.fold.fold(records, store)
        if partition in self.standing_by:  # the owner sends and dead-letters: rows only
            _write(store, folded.rows, {r.topic: r.offset + 1 for r in records})
            return
        await faults.reached("fold-batch")
        await self._send(folded.outputs)
        for record, error in folded.failures:  # acked before the offset passes them
            if not await bury(self.fold.name, record, error, 1, self.hold):
                raise GaveUp(f"{self.fold.name}: partition {partition} moved")
        if folded.outputs or folded.failures:
            await faults.reached("fold-sent")
        _write(store, folded.rows, {r.topic: r.offset + 1 for r in records})
        await faults.reached("fold-written")

    async def _send(self, outputs: list[Output]) -> None:
        """Send the batch's messages for other views; return once Kafka has them all."""
        pending = []
        for output in outputs:
            topic = self._outputs.get(output.topic)
            if topic is None:
                topic = app.topic(output.topic, key_serializer="raw", value_serializer="raw")
                self._outputs[output.topic] = topic
            partition = None
            if output.partition_by is not None:
                partition = partition_of(output.partition_by)
            pending.append(
                await topic.send(key=output.key, value=output.value, partition=partition)
            )
        if pending:
            await faults.reached("fold-unacked")
            await asyncio.gather(*pending)

    # --- rebuild -----------------------------------------------------------------

    async def rebuild(
        self, partition: int, report: Callable[[Rebuilt, int], Awaitable[None]]
    ) -> Rebuilt:
        """Fold `partition` from offset 0 into a fresh store, then swap it in.

        Up to where the live store was when it began, a refold process folds it
        (agents/refold.py: on a core of its own); then this worker folds on from there.
        The live store serves and folds meanwhile; for the last stretch (from the
        live store's offsets to the fresh one's) the live fold waits, then the fresh
        store replaces it in one step. Nothing is sent on: the live fold did that.
        `report(counts, events in the partition)` is called as it goes."""
        if partition not in self.reading:
            raise RuntimeError(f"partition {partition} is not folded here; run again")
        if partition in self._rebuilding:
            raise AlreadyRebuilding(f"partition {partition} is being rebuilt already")
        self._rebuilding.add(partition)
        try:
            return await self._rebuild(partition, report)
        finally:
            self._rebuilding.discard(partition)

    async def _rebuild(
        self, partition: int, report: Callable[[Rebuilt, int], Awaitable[None]]
    ) -> Rebuilt:
        path = self.store_path(partition).with_name(f"p{partition}.rebuild")
        shutil.rmtree(path, ignore_errors=True)
        counts = Rebuilt()

        async def progress(refolded: Counts) -> None:
            counts.read, counts.skipped = refolded.read, refolded.skipped
            await report(counts, refolded.end)

        consumer: AIOKafkaConsumer | None = None
        fresh: PartitionStore | None = None
        try:
            # up to where the live store is now, in a process of its own (agents/refold.py)
            until = {topic: self.stores[partition].offset(topic) for topic in self.topics}
            began = time.monotonic()
            if any(until.values()):
                await progress(await refold(self.fold.name, partition, path, until, progress))
            refolded = time.monotonic()
            fresh = PartitionStore(path, durable=False)
            consumer = await started_consumer(group_id=None)
            tps = [TopicPartition(topic, partition) for topic in self.topics]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, fresh.offset(tp.topic))
            while self._behind(fresh, self.stores[partition]):
                await self._rebuild_batch(consumer, partition, fresh, counts, report)
            async with self._lock:
                if partition not in self.reading:
                    raise RuntimeError(f"partition {partition} moved to another worker; run again")
                live = self.stores[partition]
                while self._behind(fresh, live):  # what the live fold did meanwhile
                    await self._rebuild_batch(consumer, partition, fresh, counts, report)
                counts.written, counts.deleted, counts.unchanged = _differences(live, fresh)
                self.stores[partition] = _replace(live, fresh)
                fresh = None  # it is the live store now
                self._assign()
            log.info(
                "%s: partition %d refolded in %.2f s (process), caught up and switched in %.2f s",
                self.fold.name,
                partition,
                refolded - began,
                time.monotonic() - refolded,
            )
        except BaseException:
            if fresh is not None:
                fresh.close()
            shutil.rmtree(path, ignore_errors=True)
            raise
        finally:
            if consumer is not None:
                await consumer.stop()
        return counts

    def _behind(self, fresh: PartitionStore, live: PartitionStore) -> bool:
        return any(fresh.offset(t) < live.offset(t) for t in self.topics)

    async def _rebuild_batch(
        self,
        consumer: AIOKafkaConsumer,
        partition: int,
        fresh: PartitionStore,
        counts: Rebuilt,
        report: Callable[[Rebuilt, int], Awaitable[None]],
    ) -> None:
        batches = await consumer.getmany(
            timeout_ms=FETCH_WAIT_MS, max_records=settings.fold_max_batch
        )
        records: list[LogRecord] = [r for rs in batches.values() for r in rs]
        if not records:
            return
        folded = self.fold.fold(records, fresh)
        _write(fresh, folded.rows, {r.topic: r.offset + 1 for r in records})
        counts.read += len(records) - len(folded.failures)
        counts.skipped += len(folded.failures)  # the live fold dead-lettered these
        ends = (self._highwater(t, partition) for t in self.topics)
        await report(counts, sum(end or 0 for end in ends))


def _write(store: PartitionStore, rows: dict[bytes, bytes | None], offsets: dict[str, int]) -> None:
    try:
        store.write(rows, offsets)
    except OSError:
        raise
    except Exception as error:  # rocksdict raises plain Exceptions for I/O errors
        raise OSError(f"{store.path}: {error}") from error


def _differences(live: PartitionStore, fresh: PartitionStore) -> tuple[int, int, int]:
    """(rows the switch writes, deletes, leaves unchanged): one merge walk of both stores."""
    written = deleted = unchanged = 0
    old, new = live.rows(), fresh.rows()
    a, b = next(old, None), next(new, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            deleted += 1
            a = next(old, None)
        elif a is None or b[0] < a[0]:
            written += 1
            b = next(new, None)
        else:
            unchanged += a[1] == b[1]
            written += a[1] != b[1]
            a, b = next(old, None), next(new, None)
    return written, deleted, unchanged


def _replace(live: PartitionStore, fresh: PartitionStore) -> PartitionStore:
    """Put `fresh` where `live` was, synchronously: no reader sees a closed store."""
    path = live.path
    fresh.seal()
    fresh.close()
    live.destroy()
    fresh.path.rename(path)
    return PartitionStore(path)
