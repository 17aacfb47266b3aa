"""Batched folds: an event topic folded into partition stores that keep their own offset.

A worker folds partition p of a fold's event topic while it owns partition p of
the topic the fold follows (the aggregate's command topic: same key, so same
partition number), following faust's assignment. Per partition, a batch is what
`getmany` returned (bounded by FOLD_MAX_BATCH): folded in memory by a pure
`BatchFold` (tables/), its bad records dead-lettered (acked first), then its rows
and its next offset written in one RocksDB WriteBatch (tables/partition_store.py).
After any crash the fold resumes from the stored offset; an empty store folds
from offset 0 (the event topic is the changelog). Commits to the consumer group
`<app id>-folds` only report progress (lag tools, the bench); they are never read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from faust.types import TP, TopicT

from agents.dead_letters import SYSTEM, bury
from app import faults
from app.kafka_clients import client_options
from app.main import app
from app.metrics import EVENTS_PROCESSED, FOLD_BATCH_SECONDS, FOLD_LAG
from app.settings import settings
from app.stalls import stalls
from tables.partition_store import PartitionStore
from tables.read_models import BatchFold, Record

log = logging.getLogger(__name__)

MAX_BATCH = int(os.environ.get("FOLD_MAX_BATCH", "5000"))
"""Most records folded in one batch (one getmany; one write per partition)."""
FETCH_WAIT_MS = 100
"""Longest a getmany waits for records when none have arrived."""
REPORT_EVERY = 1.0
"""Seconds between progress commits and lag gauges."""
MAX_BACKOFF_SECONDS = 5.0

FOLDS: dict[str, FoldRunner] = {}
"""Every fold of this worker by name (rebuilds and /ops find them here)."""


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


class FoldRunner(faust.Service):
    """Runs one BatchFold over the partitions this worker owns."""

    def __init__(self, fold: BatchFold, follows: TopicT, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fold = fold
        self.follows = follows.get_topic_name()
        self.topic = settings.topic(fold.events)
        self.stores: dict[int, PartitionStore] = {}
        """Open stores by partition: those folded here, kept open through a rebalance."""
        self.folding: set[int] = set()
        self._lock = asyncio.Lock()
        """Held by a batch, a revocation, an assignment and a rebuild's switch."""
        self._revoking = False
        self._consumer: AIOKafkaConsumer | None = None
        self._reported: dict[int, int] = {}
        self._last_report = 0.0
        FOLDS[fold.name] = self
        app.on_partitions_revoked.connect(cast(Any, self._on_revoked))
        app.on_partitions_assigned.connect(cast(Any, self._on_assigned))

    # --- where things are --------------------------------------------------------

    def store_path(self, partition: int) -> Path:
        return Path(app.conf.datadir) / "folds" / self.fold.name / f"p{partition}"

    def store_for(self, key: str) -> PartitionStore:
        """The store holding `key` (the producer's partitioner); NotHere if not open here."""
        partition = (murmur2(key.encode()) & 0x7FFFFFFF) % settings.partitions
        store = self.stores.get(partition)
        if store is None or partition not in self.folding:
            raise NotHere(f"{self.fold.name} partition {partition} is not folded on this worker")
        return store

    def progress(self) -> list[dict[str, Any]]:
        """Per partition folded here: the stored offset, the log end seen, the lag."""
        rows = []
        for partition in sorted(self.folding):
            offset = self.stores[partition].offset
            end = self._highwater(partition)
            rows.append(
                {
                    "partition": partition,
                    "offset": offset,
                    "end": end,
                    "lag": None if end is None else max(0, end - offset),
                }
            )
        return rows

    # --- lifecycle ---------------------------------------------------------------

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            group_id=f"{app.conf.id}-folds",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed" if app.in_transaction else "read_uncommitted",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **client_options(),
        )
        await self._consumer.start()
        async with self._lock:
            self._assign()

    async def on_stop(self) -> None:
        async with self._lock:
            await self._report(force=True)
            if self._consumer is not None:
                await self._consumer.stop()
            for store in self.stores.values():
                store.close()
            self.stores.clear()
            self.folding.clear()

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        mine = {tp.partition for tp in revoked if tp.topic == self.follows}
        if not mine:
            return
        self._revoking = True
        try:
            async with self._lock:  # the batch in flight ends first (its write is atomic)
                await faults.reached("fold-revoke")
                await self._report(force=True)
                self.folding -= mine
                self._assign()
        finally:
            self._revoking = False

    async def _on_assigned(self, sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        mine = {tp.partition for tp in assigned if tp.topic == self.follows}
        async with self._lock:
            for partition in set(self.stores) - mine:
                self.stores.pop(partition).close()
            for partition in mine - set(self.stores):
                self.stores[partition] = PartitionStore(self.store_path(partition))
            self.folding = mine
            self._assign()
        log.info("%s: folding partitions %s", self.fold.name, sorted(mine))

    def _assign(self) -> None:
        """Read exactly the partitions folded here, each from its stored offset."""
        if self._consumer is None:
            return
        tps = [TopicPartition(self.topic, p) for p in sorted(self.folding)]
        self._consumer.assign(tps)
        for tp in tps:
            self._consumer.seek(tp, self.stores[tp.partition].offset)

    # --- the loop ----------------------------------------------------------------

    @faust.Service.task
    async def _folding(self) -> None:
        failures = 0
        while not self.should_stop:
            if self._consumer is None or not self.folding:
                await asyncio.sleep(0.05)
                continue
            try:
                async with self._lock:
                    await self._fold_what_arrived(self._consumer)
                failures = 0
                stalls.cleared(self.fold.name)
                await self._report()
            except SYSTEM as error:
                failures += 1
                stalls.failed(self.fold.name, error)
                async with self._lock:
                    self._assign()  # back to the stored offsets
                await asyncio.sleep(min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** min(failures, 5)))

    async def _fold_what_arrived(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=FETCH_WAIT_MS, max_records=MAX_BATCH)
        for tp, records in batches.items():
            if tp.partition in self.folding:
                await self._fold_batch(self.stores[tp.partition], records)

    async def _fold_batch(self, store: PartitionStore, records: list[Any]) -> None:
        records = [r for r in records if r.offset >= store.offset]  # a fetch that raced a seek
        if not records:
            return
        started = time.monotonic()
        folded = self.fold.fold(records, store.get)
        await faults.reached("fold-batch")
        for record, error in folded.failures:  # acked before the offset passes them
            if not await bury(self.fold.name, record, error, 1, self._hold):
                return
        _write(store, folded.rows, records[-1].offset + 1)
        await faults.reached("fold-written")
        EVENTS_PROCESSED.labels(agent=self.fold.name).inc(len(records))
        FOLD_BATCH_SECONDS.labels(fold=self.fold.name).observe(time.monotonic() - started)

    async def _hold(self) -> bool:
        if self._revoking:
            return False
        await asyncio.sleep(1.0)
        return True

    async def _report(self, force: bool = False) -> None:
        """Commit the stored offsets to the progress group; set the lag gauges."""
        now = time.monotonic()
        if self._consumer is None or (not force and now - self._last_report < REPORT_EVERY):
            return
        self._last_report = now
        for row in self.progress():
            if row["lag"] is not None:
                FOLD_LAG.labels(fold=self.fold.name, partition=str(row["partition"])).set(
                    row["lag"]
                )
        changed = {
            TopicPartition(self.topic, p): self.stores[p].offset
            for p in self.folding
            if self.stores[p].offset and self._reported.get(p) != self.stores[p].offset
        }
        if not changed:
            return
        try:
            await self._consumer.commit(changed)
            self._reported.update({tp.partition: offset for tp, offset in changed.items()})
        except KafkaError as error:  # progress is reported again next time
            log.debug("%s: progress commit failed: %r", self.fold.name, error)

    def _highwater(self, partition: int) -> int | None:
        if self._consumer is None:
            return None
        return self._consumer.highwater(TopicPartition(self.topic, partition))

    # --- rebuild -----------------------------------------------------------------

    async def rebuild(
        self, partition: int, report: Callable[[Rebuilt, int], Awaitable[None]]
    ) -> Rebuilt:
        """Fold `partition` from offset 0 into a fresh store, then swap it in.

        The live store serves and folds meanwhile; for the last stretch (from the
        live store's offset to the fresh one's) the live fold waits, then the fresh
        store replaces it in one step. `report(counts, log end)` is called as it goes."""
        if partition not in self.folding:
            raise RuntimeError(f"partition {partition} is not folded here; run again")
        path = self.store_path(partition).with_name(f"p{partition}.rebuild")
        shutil.rmtree(path, ignore_errors=True)
        fresh = PartitionStore(path)
        counts = Rebuilt()
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed" if app.in_transaction else "read_uncommitted",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **client_options(),
        )
        await consumer.start()
        tp = TopicPartition(self.topic, partition)
        try:
            consumer.assign([tp])
            consumer.seek(tp, 0)
            while fresh.offset < self.stores[partition].offset:
                await self._rebuild_batch(consumer, tp, fresh, counts, report)
            async with self._lock:
                if partition not in self.folding:
                    raise RuntimeError(f"partition {partition} moved to another worker; run again")
                live = self.stores[partition]
                while fresh.offset < live.offset:  # what the live fold did meanwhile
                    await self._rebuild_batch(consumer, tp, fresh, counts, report)
                counts.written, counts.deleted, counts.unchanged = _differences(live, fresh)
                self.stores[partition] = _replace(live, fresh)
                self._assign()
        except BaseException:
            fresh.destroy()
            raise
        finally:
            await consumer.stop()
        return counts

    async def _rebuild_batch(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        fresh: PartitionStore,
        counts: Rebuilt,
        report: Callable[[Rebuilt, int], Awaitable[None]],
    ) -> None:
        batches = await consumer.getmany(tp, timeout_ms=FETCH_WAIT_MS, max_records=MAX_BATCH)
        records: list[Record] = list(batches.get(tp, []))
        if not records:
            return
        folded = self.fold.fold(records, fresh.get)
        _write(fresh, folded.rows, records[-1].offset + 1)
        counts.read += len(records) - len(folded.failures)
        counts.skipped += len(folded.failures)  # the live fold dead-lettered these
        await report(counts, self._highwater(tp.partition) or fresh.offset)


def _write(store: PartitionStore, rows: dict[bytes, bytes | None], next_offset: int) -> None:
    try:
        store.write(rows, next_offset)
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
    fresh.close()
    live.destroy()
    fresh.path.rename(path)
    return PartitionStore(path)
