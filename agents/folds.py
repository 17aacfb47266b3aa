"""Batched folds: event topics folded into partition stores that keep their own offsets.

A worker folds partition p of a fold's topics while it owns partition p of the
topic the fold follows (a command topic: same key, so same partition number),
following faust's assignment. Per partition, a batch is what `getmany` returned
(bounded by FOLD_MAX_BATCH; fetches wait up to FOLD_FOLLOW_WAIT_MS to fill): folded in
memory by a pure `BatchFold` (tables/),
its messages for other views sent and its bad records dead-lettered (both acked
first), then its rows and each topic's next offset written in one RocksDB
WriteBatch (tables/partition_store.py). After any crash the fold resumes from
the stored offsets; an empty store folds from offset 0 (the event topics are
the changelog). Commits to the consumer group `<app id>-folds` report progress
(lag tools, the bench); only a fold that keeps no rows reads them back (its
outputs are its effect: see `_catch_up_with_progress`).
"""

from __future__ import annotations

import asyncio
import logging
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
from app.metrics import EVENTS_PROCESSED, FOLD_BATCH_SECONDS, FOLD_LAG, STORES
from app.settings import settings
from app.stalls import stalls
from tables.partition_store import PartitionStore
from tables.read_models import BatchFold, LogRecord, Output

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 100
"""Longest a getmany waits for records when none have arrived."""
REPORT_EVERY = 1.0
"""Seconds between progress commits and lag gauges."""
MAX_BACKOFF_SECONDS = 5.0

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


class FoldRunner(faust.Service):
    """Runs one BatchFold over the partitions this worker owns.

    `single`: the fold's topics have one partition, folded where partition 0 of
    `follows` is (a figure over everything: analytics windows, dead letters).
    `outputs_only`: the fold keeps no rows, its outputs are its effect (the
    analytics facts): its place is also its progress commit (see
    `_catch_up_with_progress`)."""

    def __init__(
        self,
        fold: BatchFold,
        follows: TopicT,
        *,
        single: bool = False,
        outputs_only: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fold = fold
        self.follows = follows.get_topic_name()
        self.single = single
        self.outputs_only = outputs_only
        self.topics = [settings.topic(name) for name in fold.events]
        self._outputs: dict[str, TopicT] = {}
        self.stores: dict[int, PartitionStore] = {}
        """Open stores by partition: those folded here, kept open through a rebalance."""
        self.folding: set[int] = set()
        self.caught_up: set[int] = set()
        """Partitions folded here whose store reached the log's end once since their
        assignment: only those serve reads (before, a row could be missing, not absent)."""
        self._lock = asyncio.Lock()
        """Held by a batch, a revocation, an assignment and a rebuild's switch."""
        self._revoking = False
        self._rebuilding: set[int] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._reported: dict[TopicPartition, int] = {}
        self._last_report = 0.0
        FOLDS[fold.name] = self
        STORES[fold.name] = lambda: self.stores
        app.on_partitions_revoked.connect(cast(Any, self._on_revoked))
        app.on_partitions_assigned.connect(cast(Any, self._on_assigned))

    # --- where things are --------------------------------------------------------

    def store_path(self, partition: int) -> Path:
        return Path(app.conf.datadir) / "folds" / self.fold.name / f"p{partition}"

    def store_for(self, key: str) -> PartitionStore:
        """The store holding `key` (the producer's partitioner); NotHere if not open here."""
        partition = 0 if self.single else partition_of(key.encode())
        store = self.stores.get(partition)
        if store is None or partition not in self.folding:
            raise NotHere(f"{self.fold.name} partition {partition} is not folded on this worker")
        if partition not in self.caught_up:
            raise NotHere(f"{self.fold.name} partition {partition} is catching up with its log")
        return store

    def catching_up(self) -> list[int]:
        """Partitions folded here that have not reached their log's end since assigned."""
        return sorted(self.folding - self.caught_up)

    def progress(self) -> list[dict[str, Any]]:
        """Per topic partition folded here: the stored offset, the log end seen, the lag."""
        rows = []
        for partition in sorted(self.folding):
            for topic in self.topics:
                offset = self.stores[partition].offset(topic)
                end = self._highwater(topic, partition)
                lag = None if end is None else max(0, end - offset)
                row = {"topic": topic, "partition": partition, "offset": offset, "end": end}
                rows.append({**row, "lag": lag})
        return rows

    # --- lifecycle ---------------------------------------------------------------

    async def on_start(self) -> None:
        consumer = await started_consumer(group_id=f"{app.conf.id}-folds", following=True)
        async with self._lock:  # partitions may have been assigned already
            if self.outputs_only:
                for partition, store in self.stores.items():
                    await self._catch_up_with_progress(consumer, store, partition)
            self._consumer = consumer
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

    def _mine(self, tps: set[TP]) -> set[int]:
        """The partitions of the fold's topics that go with these of `follows`."""
        mine = {tp.partition for tp in tps if tp.topic == self.follows}
        return mine & {0} if self.single else mine

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        mine = self._mine(revoked)
        if not mine:
            return
        self._revoking = True
        try:
            async with self._lock:  # the batch in flight ends first (its write is atomic)
                await faults.reached("fold-revoke")
                await self._report(force=True)
                self.folding -= mine
                self.caught_up -= mine
                self._assign()
        finally:
            self._revoking = False

    async def _on_assigned(self, sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        mine = self._mine(assigned)
        async with self._lock:
            for partition in set(self.stores) - mine:
                self.stores.pop(partition).close()
            for partition in mine - set(self.stores):
                self.stores[partition] = store = PartitionStore(self.store_path(partition))
                if self.outputs_only and self._consumer is not None:
                    await self._catch_up_with_progress(self._consumer, store, partition)
            self.folding = mine
            self.caught_up &= mine
            self._assign()
        log.info("%s: folding partitions %s", self.fold.name, sorted(mine))

    async def _catch_up_with_progress(
        self, consumer: AIOKafkaConsumer, store: PartitionStore, partition: int
    ) -> None:
        """An outputs-only fold resumes from its progress commit when that is ahead of its
        store (the disk was lost, or another worker folded the partition since). Progress
        reports stored offsets, and an offset is stored only once its outputs were acked:
        everything below the commit was sent, so nothing is lost and nothing old is sent
        again (the receiving fold recognises the little that is)."""
        ahead: dict[str, int] = {}
        for topic in self.topics:
            try:
                committed = await consumer.committed(TopicPartition(topic, partition))
            except KafkaError as error:  # then from the store's own offset: sent again
                log.warning(
                    "%s: no progress commit for %s[%d]: %r", self.fold.name, topic, partition, error
                )
                continue
            if committed is not None and committed > store.offset(topic):
                ahead[topic] = committed
        if ahead:
            store.write({}, ahead)
            log.info(
                "%s: partition %d resumes from its progress %s", self.fold.name, partition, ahead
            )

    def _assign(self) -> None:
        """Read exactly the partitions folded here, each from its stored offset."""
        if self._consumer is None:
            return
        tps = [TopicPartition(t, p) for p in sorted(self.folding) for t in self.topics]
        self._consumer.assign(tps)
        for tp in tps:
            self._consumer.seek(tp, self.stores[tp.partition].offset(tp.topic))

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
                self._note_caught_up()
                await self._report()
            except SYSTEM as error:
                failures += 1
                stalls.failed(self.fold.name, error)
                async with self._lock:
                    self._assign()  # back to the stored offsets
                await asyncio.sleep(min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** min(failures, 5)))

    def _note_caught_up(self) -> None:
        for partition in self.folding - self.caught_up:
            ends = [self._highwater(topic, partition) for topic in self.topics]
            store = self.stores[partition]
            if all(
                end is not None and store.offset(topic) >= end
                for topic, end in zip(self.topics, ends, strict=True)
            ):
                self.caught_up.add(partition)

    async def _fold_what_arrived(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(
            timeout_ms=FETCH_WAIT_MS, max_records=settings.fold_max_batch
        )
        by_partition: dict[int, list[Any]] = {}
        for tp, records in batches.items():
            if tp.partition in self.folding:
                store = self.stores[tp.partition]
                new = [r for r in records if r.offset >= store.offset(tp.topic)]  # raced a seek
                by_partition.setdefault(tp.partition, []).extend(new)
        for partition, records in by_partition.items():
            if records:
                await self._fold_batch(self.stores[partition], records)

    async def _fold_batch(self, store: PartitionStore, records: list[Any]) -> None:
        started = time.monotonic()
        folded = self.fold.fold(records, store)
        await faults.reached("fold-batch")
        await self._send(folded.outputs)
        for record, error in folded.failures:  # acked before the offset passes them
            if not await bury(self.fold.name, record, error, 1, self._hold):
                return
        if folded.outputs or folded.failures:
            await faults.reached("fold-sent")
        _write(store, folded.rows, {r.topic: r.offset + 1 for r in records})
        await faults.reached("fold-written")
        EVENTS_PROCESSED.labels(agent=self.fold.name).inc(len(records))
        FOLD_BATCH_SECONDS.labels(fold=self.fold.name).observe(time.monotonic() - started)

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
            tp: offset
            for p in self.folding
            for tp, offset in (
                (TopicPartition(t, p), self.stores[p].offset(t)) for t in self.topics
            )
            if offset and self._reported.get(tp) != offset
        }
        if not changed:
            return
        try:
            await self._consumer.commit(changed)
            self._reported.update(changed)
        except KafkaError as error:  # progress is reported again next time
            log.debug("%s: progress commit failed: %r", self.fold.name, error)

    def _highwater(self, topic: str, partition: int) -> int | None:
        if self._consumer is None:
            return None
        return self._consumer.highwater(TopicPartition(topic, partition))

    # --- rebuild -----------------------------------------------------------------

    async def rebuild(
        self, partition: int, report: Callable[[Rebuilt, int], Awaitable[None]]
    ) -> Rebuilt:
        """Fold `partition` from offset 0 into a fresh store, then swap it in.

        The live store serves and folds meanwhile; for the last stretch (from the
        live store's offsets to the fresh one's) the live fold waits, then the fresh
        store replaces it in one step. Nothing is sent on: the live fold did that.
        `report(counts, events in the partition)` is called as it goes."""
        if partition not in self.folding:
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
        fresh = PartitionStore(path)
        counts = Rebuilt()
        consumer = await started_consumer(group_id=None)
        tps = [TopicPartition(topic, partition) for topic in self.topics]
        try:
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, 0)
            while self._behind(fresh, self.stores[partition]):
                await self._rebuild_batch(consumer, partition, fresh, counts, report)
            async with self._lock:
                if partition not in self.folding:
                    raise RuntimeError(f"partition {partition} moved to another worker; run again")
                live = self.stores[partition]
                while self._behind(fresh, live):  # what the live fold did meanwhile
                    await self._rebuild_batch(consumer, partition, fresh, counts, report)
                counts.written, counts.deleted, counts.unchanged = _differences(live, fresh)
                self.stores[partition] = _replace(live, fresh)
                self._assign()
        except BaseException:
            fresh.destroy()
            raise
        finally:
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


async def started_consumer(
    group_id: str | None, following: bool = False, wait_ms: int | None = None
) -> AIOKafkaConsumer:
    """A consumer for explicit assignment and seeks (no group membership; a group id
    only to commit progress to). `following`: it trails the log's end, off any
    command's path, so its fetches wait to fill (FOLD_FOLLOW_WAIT_MS): a fold that trails
    the log by up to that fetches a few times a second per broker, not once for each
    record that arrives: with about fifteen following consumers per worker, writing their
    fetch requests was a large share of a worker's CPU (bench.saga's profile, README).
    `wait_ms` overrides that wait (a command side's tail)."""
    wait = settings.fold_follow_wait_ms if wait_ms is None else wait_ms
    batching = {"fetch_min_bytes": 1024 * 1024, "fetch_max_wait_ms": wait}
    consumer = AIOKafkaConsumer(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **(batching if following else {}),
        **client_options(),
    )
    await consumer.start()
    # let its coordinator's reset task start: cancelled before its first step (a stop
    # right after the start), aiokafka's close() raises CancelledError into the caller
    await asyncio.sleep(0)
    return consumer


def partition_of(key: bytes) -> int:
    """The partition Kafka's default partitioner gives `key` (as faust's producer does)."""
    return (murmur2(key) & 0x7FFFFFFF) % settings.partitions


def key_in_partition(partition: int) -> str:
    """A key the partitioner puts in `partition`: a request routed by it reaches the
    worker that owns that partition (where a `single` fold runs, for partition 0)."""
    n = 0
    while partition_of(f"p{partition}-{n}".encode()) != partition:
        n += 1
    return f"p{partition}-{n}"


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
    fresh.close()
    live.destroy()
    fresh.path.rename(path)
    return PartitionStore(path)
