"""The partition engine: every reader of the log runs on it.

A reader (a read model's fold, a saga service, the analytics, the dead letters)
reads partition p of its topics while this worker owns partition p
(tables/owners.py: faust's assignment, followed, not its consumer), each topic
from the position the reader stored itself. Per partition, a batch is what a
`getmany` returned (bounded by the reader's `max_batch`; its fetches wait up to
`fetch_wait_ms` to fill); `handle` processes it and stores the position where
the reader's effect is:

- with its rows, in one RocksDB write (a read model: tables/partition_store.py);
- after its outputs are acknowledged (a saga service, the analytics facts): an
  empty store then resumes from the reader's progress commit, which never passes
  a stored position.

The partitions of one fetch are handled side by side. After any crash a reader
resumes from its stored position: it never skips a record, and a reader whose
effect is records may repeat a batch, which every receiver applies once.
Nothing here depends on faust's stream: no commit can pass a record in flight,
no cancelled hand-over can lose one, a partition without a commit starts at
its stored position like any other.

Each reader commits its stored positions to its own progress group
(`<app id>-<reader>`): that is how lag is measured (app/lag.py, /ops/lag), and
where a reader without rows resumes on an empty disk.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from pathlib import Path
from typing import Any, ClassVar, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from faust.types import TP

from agents.dead_letters import SYSTEM
from app import faults, lag, tracing
from app.faust_clients import FetchPace
from app.kafka_clients import coordination_died, started_consumer
from app.logs import LOG_CONTEXT
from app.main import app
from app.metrics import EVENTS_PROCESSED, FOLD_BATCH_SECONDS, FOLD_LAG, STORES
from app.settings import settings
from app.stalls import stalls
from models.tracing import trace_of
from tables.owners import owned_partitions, partitions_in, standby_partitions
from tables.partition_store import PartitionStore

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 100
"""Longest a getmany waits for records when none have arrived."""
REPORT_EVERY = 1.0
"""Seconds between progress commits and lag gauges."""
MAX_BACKOFF_SECONDS = 5.0

READERS: dict[str, Reader] = {}
"""Every reader of this worker by name (/ops and readiness find them here)."""


class Misplaced(KafkaError):
    """A fetch began past the position a reader stored (its consumer was not where its
    store is): nothing of it is handed over, and the reader reads again from its store."""


class Reader(faust.Service):
    """Reads its topics' partitions owned here, a batch per partition at a time.

    Subclasses say what a batch does (`handle`), which must store the position it
    reached in the partition's store (`store.write(rows, offsets)`).

    `single`: the topics have one partition, read where partition 0 is owned (a
    figure over everything: analytics windows, dead letters). `resumes_from_progress`:
    the reader keeps no rows (its outputs are its effect): an empty or stale store
    resumes from its progress commit (see `_catch_up_with_progress`). Any other reader
    (`stands_by`) also folds the partitions this worker stands by for (tables/owners.py:
    none unless SHOP_STANDBY_REPLICAS) into their stores, serving no reads from them and
    sending nothing, so that when one of them is assigned here its store is already near
    the log's end."""

    kind: ClassVar[str] = "readers"
    """The data dir's folder of this kind of reader's stores."""

    def __init__(
        self,
        name: str,
        topics: tuple[str, ...],
        *,
        single: bool = False,
        resumes_from_progress: bool = False,
        max_batch: int | None = None,
        fetch_wait_ms: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.topics = [settings.topic(topic) for topic in topics]
        self.single = single
        self.resumes_from_progress = resumes_from_progress
        self.max_batch = max_batch or settings.fold_max_batch
        self.fetch_wait_ms = fetch_wait_ms
        self.stands_by = not single and not resumes_from_progress
        self.group = lag.progress_group(name)
        self.stores: dict[int, PartitionStore] = {}
        """Open stores by partition: those read here, kept open through a rebalance."""
        self.reading: set[int] = set()
        """The partitions read here now."""
        self.standing_by: set[int] = set()
        """The partitions folded here as a standby (not read: no reads served)."""
        self.caught_up: set[int] = set()
        """Partitions read here whose store reached the log's end once since their
        assignment: only those serve reads (before, a row could be missing, not absent)."""
        self._lock = asyncio.Lock()
        """Held by a fetch's batches, a revocation, an assignment and a rebuild's switch."""
        self._revoking = False
        self._standing_by_read = False
        """Whether the standby partitions are among those read (after the owned ones)."""
        self._consumer: AIOKafkaConsumer | None = None
        self._pace: FetchPace | None = None
        self._reported: dict[TopicPartition, int] = {}
        self._last_report = 0.0
        # each batch counts: the labelled children are looked up once, not per batch
        self._processed = EVENTS_PROCESSED.labels(agent=name)
        self._batch_seconds = FOLD_BATCH_SECONDS.labels(fold=name)
        READERS[name] = self
        lag.READERS[self.group] = tuple(self.topics)
        STORES[name] = lambda: self.stores
        app.on_partitions_revoked.connect(cast(Any, self._on_revoked))
        app.on_partitions_assigned.connect(cast(Any, self._on_assigned))

    @abc.abstractmethod
    async def handle(self, partition: int, store: PartitionStore, records: list[Any]) -> None:
        """Process one partition's batch and store the position it reached."""

    # --- where things are --------------------------------------------------------

    def store_path(self, partition: int) -> Path:
        return Path(app.conf.datadir) / self.kind / self.name / f"p{partition}"

    def catching_up(self) -> list[int]:
        """Partitions read here that have not reached their log's end since assigned."""
        return sorted(self.reading - self.caught_up)

    def progress(self, standby: bool = False) -> list[dict[str, Any]]:
        """Per topic partition read here (`standby`: stood by for): the stored offset, the
        log end seen, the lag."""
        rows = []
        for partition in sorted(self.standing_by if standby else self.reading):
            for topic in self.topics:
                offset = self.stores[partition].offset(topic)
                end = self._highwater(topic, partition)
                lag = None if end is None else max(0, end - offset)
                row = {"topic": topic, "partition": partition, "offset": offset, "end": end}
                rows.append({**row, "lag": lag, "standby": standby})
        return rows

    # --- lifecycle ---------------------------------------------------------------

    async def _started_consumer(self) -> AIOKafkaConsumer:
        consumer = await started_consumer(
            group_id=self.group, following=True, wait_ms=self.fetch_wait_ms
        )
        self._pace = FetchPace(consumer)
        return consumer

    async def on_start(self) -> None:
        consumer = await self._started_consumer()
        async with self._lock:  # partitions may have been assigned already
            if self.resumes_from_progress:
                for partition, store in self.stores.items():
                    await self._catch_up_with_progress(consumer, store, partition)
            self._consumer = consumer
            self._assign()

    async def on_stop(self) -> None:
        async with self._lock:
            await self._report(force=True)
            consumer, self._consumer = self._consumer, None
            if consumer is not None:
                await consumer.stop()
            for store in self.stores.values():
                store.close()
            self.stores.clear()
            self.reading.clear()
            self.standing_by.clear()

    def _mine(self, partitions: set[int]) -> set[int]:
        return partitions & {0} if self.single else partitions

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        mine = self._mine(partitions_in(revoked)) & self.reading
        if not mine:
            return
        self._revoking = True
        try:
            async with self._lock:  # the batches in flight end first
                await faults.reached("fold-revoke")
                await self._report(force=True)
                self.reading -= mine
                self.caught_up -= mine
                self._assign()
        finally:
            self._revoking = False

    async def _on_assigned(self, sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        mine = self._mine(owned_partitions())
        spare = standby_partitions() - mine if self.stands_by else set()
        async with self._lock:
            for partition in set(self.stores) - mine - spare:
                self.stores.pop(partition).close()
            for partition in (mine | spare) - set(self.stores):
                self.stores[partition] = store = PartitionStore(self.store_path(partition))
                if self.resumes_from_progress and self._consumer is not None:
                    await self._catch_up_with_progress(self._consumer, store, partition)
            self.reading, self.standing_by = mine, spare
            self.caught_up &= mine
            self._assign()
        standing_by = f", standing by for {sorted(spare)}" if spare else ""
        log.info(
            "%s: reading partitions %s%s",
            *(self.name, sorted(mine), standing_by),
            extra={"reader": self.name},
        )

    async def _catch_up_with_progress(
        self, consumer: AIOKafkaConsumer, store: PartitionStore, partition: int
    ) -> None:
        """A reader without rows resumes from its progress commit when that is ahead of its
        store (the disk was lost, or another worker read the partition since). Progress
        reports stored positions, and a position is stored only once its outputs were
        acked: everything below the commit was sent, so nothing is lost and little is sent
        again (the receivers recognise it)."""
        ahead: dict[str, int] = {}
        for topic in self.topics:
            try:
                committed = await consumer.committed(TopicPartition(topic, partition))
            except KafkaError as error:  # then from the store's own offset: sent again
                log.warning(
                    "%s: no progress commit for %s[%d]: %r",
                    *(self.name, topic, partition, error),
                    extra={"reader": self.name, "topic": topic, "partition": partition},
                )
                continue
            if committed is not None and committed > store.offset(topic):
                ahead[topic] = committed
        if ahead:
            store.write({}, ahead)
            log.info(
                "%s: partition %d resumes from its progress %s",
                *(self.name, partition, ahead),
                extra={"reader": self.name, "partition": partition},
            )

    def _assign(self) -> None:
        """Read exactly the partitions owned here, each from its stored position, and
        once they have all reached their log's end, those it stands by for."""
        if self._consumer is None:
            return
        folded = set(self.reading)
        self._standing_by_read = self.reading <= self.caught_up
        if self._standing_by_read:  # what it serves first: a start is not slowed by standbys
            folded |= self.standing_by
        tps = [TopicPartition(t, p) for p in sorted(folded) for t in self.topics]
        self._consumer.assign(tps)
        for tp in tps:
            self._consumer.seek(tp, self.stores[tp.partition].offset(tp.topic))

    # --- the loop ----------------------------------------------------------------

    @faust.Service.task
    async def _reading(self) -> None:
        failures = 0
        while not self.should_stop:
            if self._consumer is None or not self.reading:
                await asyncio.sleep(0.05)
                continue
            consumer = self._consumer
            try:
                # the fetch waits outside the lock: a stop or a rebalance does not wait
                # for it, and what it brought is checked against the stores under the lock
                batches = await consumer.getmany(
                    timeout_ms=FETCH_WAIT_MS, max_records=self.max_batch
                )
                if self._pace is not None and self._pace.consumer is consumer:
                    self._pace.brought(sum(len(records) for records in batches.values()))
                async with self._lock:
                    if self.should_stop or consumer is not self._consumer:
                        continue
                    await self._handle_what_arrived(batches)
                failures = 0
                stalls.cleared(self.name)
                self._note_caught_up()
                if self.standing_by and not self._standing_by_read:
                    async with self._lock:
                        if self.reading <= self.caught_up:
                            self._assign()
                await self._report()
            except SYSTEM as error:
                failures += 1
                stalls.failed(self.name, error)
                await self._read_again()
                await asyncio.sleep(min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** min(failures, 5)))

    async def _read_again(self) -> None:
        """After a system error: from the stored positions, through a new consumer when
        the old one's group coordination died (it would never read again: see
        `coordination_died`)."""
        async with self._lock:
            if self._consumer is not None and coordination_died(self._consumer):
                await self._replace_consumer()
            self._assign()

    async def _replace_consumer(self) -> None:
        dead, self._consumer = self._consumer, await self._started_consumer()
        log.warning(
            "%s: its consumer's group coordination died; reading on with a new one", self.name
        )
        if dead is not None:
            try:
                await dead.stop()
            except (KafkaError, OSError) as error:  # it is dead already: nothing to save
                log.debug("%s: stopping the dead consumer: %r", self.name, error)

    def _note_caught_up(self) -> None:
        for partition in self.reading - self.caught_up:
            ends = [self._highwater(topic, partition) for topic in self.topics]
            store = self.stores[partition]
            if all(
                end is not None and store.offset(topic) >= end
                for topic, end in zip(self.topics, ends, strict=True)
            ):
                self.caught_up.add(partition)

    async def _handle_what_arrived(self, batches: dict[TopicPartition, list[Any]]) -> None:
        by_partition: dict[int, list[Any]] = {}
        for tp, records in batches.items():
            if not records or (
                tp.partition not in self.reading and tp.partition not in self.standing_by
            ):
                continue  # revoked while it was fetched
            stored = self.stores[tp.partition].offset(tp.topic)
            if records[0].offset > stored:
                await self._check_no_gap(tp, records[0].offset, stored)
            new = [r for r in records if r.offset >= stored]  # a store moved ahead meanwhile
            by_partition.setdefault(tp.partition, []).extend(new)
        handled = await asyncio.gather(
            *(
                self._timed(partition, self.stores[partition], records)
                for partition, records in by_partition.items()
                if records
            ),
            return_exceptions=True,
        )
        for outcome in handled:  # each partition's batch ran to its end, or stored nothing
            if isinstance(outcome, BaseException):
                raise outcome

    async def _check_no_gap(self, tp: TopicPartition, first: int, stored: int) -> None:
        """A fetch that begins past the stored position is handed over only when what lies
        between is gone from the log (below its start: a command topic's retention)."""
        assert self._consumer is not None
        start = (await self._consumer.beginning_offsets([tp]))[tp]
        if first > start:
            raise Misplaced(f"{self.name}: {tp} fetched from {first}, stored {stored}")

    async def _timed(self, partition: int, store: PartitionStore, records: list[Any]) -> None:
        started = time.monotonic()
        first, n = records[0], len(records)
        # each partition's batch runs in a task of its own (gather): its lines name it
        LOG_CONTEXT.set(
            {
                "reader": self.name,
                "topic": first.topic,
                "partition": partition,
                "offset": first.offset,
                "records": n,
            }
        )
        spans = tracing.SPANS
        if spans is None:
            await self.handle(partition, store, records)
        else:
            span = spans.start(
                f"{self.name} batch",
                None,  # many orders' records: their traces are linked, none is its parent
                {
                    "shop.reader": self.name,
                    "shop.partition": partition,
                    "shop.records": len(records),
                },
                links=_traces_in(records),
            )
            try:
                await self.handle(partition, store, records)
            finally:
                span.end()
        self._processed.inc(len(records))
        self._batch_seconds.observe(time.monotonic() - started)

    async def hold(self) -> bool:
        """Wait before retrying a dead letter's send; False while revoking (give it up:
        the batch stores nothing and the partition's next owner reads it again)."""
        if self._revoking:
            return False
        await asyncio.sleep(1.0)
        return True

    async def _report(self, force: bool = False) -> None:
        """Commit the stored positions to the progress group; set the lag gauges."""
        now = time.monotonic()
        if self._consumer is None or (not force and now - self._last_report < REPORT_EVERY):
            return
        self._last_report = now
        for row in self.progress():
            if row["lag"] is not None:
                FOLD_LAG.labels(fold=self.name, partition=str(row["partition"])).set(row["lag"])
        changed = {
            tp: offset
            for p in self.reading
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
            log.debug(
                "%s: progress commit failed: %r", self.name, error, extra={"reader": self.name}
            )

    def _highwater(self, topic: str, partition: int) -> int | None:
        tp = TopicPartition(topic, partition)
        if self._consumer is None or tp not in self._consumer.assignment():
            return None  # not read now (a standby waiting for the owned partitions)
        return self._consumer.highwater(tp)


MAX_LINKS = 32
"""Traces a batch's span links to at most (OpenTelemetry keeps 128 by default)."""


def _traces_in(records: list[Any]) -> list[bytes]:
    traces: dict[bytes, None] = {}
    for record in records:
        trace = trace_of(record.headers)
        if trace is not None:
            traces[trace] = None
            if len(traces) == MAX_LINKS:
                break
    return list(traces)


def partition_of(key: bytes) -> int:
    """The partition Kafka's default partitioner gives `key` (as faust's producer does)."""
    return (murmur2(key) & 0x7FFFFFFF) % settings.partitions


def key_in_partition(partition: int) -> str:
    """A key the partitioner puts in `partition`: a request routed by it reaches the
    worker that owns that partition (where a `single` reader runs, for partition 0)."""
    n = 0
    while partition_of(f"p{partition}-{n}".encode()) != partition:
        n += 1
    return f"p{partition}-{n}"
