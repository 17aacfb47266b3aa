"""The command side of one aggregate type: append first, fold the rest from the log.

A worker decides partition p's commands while it owns partition p
(tables/owners.py). Per partition, a writer:

1. on assignment, folds the partition's events from its store's offset to the
   log's end (tables/command_log.py): before its first decision it has seen
   every event, whoever appended it;
2. takes the commands that have arrived (from the command topic's agent and
   from this worker's own HTTP requests), decides them in order against that
   fold (`decide_batch`), appends every accepted command's events in one go
   (acks=all) and waits once: group commit, so latency stays near one round
   trip while throughput grows with load;
3. folds what it appended into the store with the offsets Kafka gave, in one
   RocksDB write, then answers.

What other producers append (older code, imports) is folded as it arrives by
the command sides' tail (`Tails`: one consumer for every writer of the worker), so
their events are part of the next decision. The
tail trails by up to TAIL_WAIT_MS, so a batch that refuses a command first asks
the broker where the log ends: if it is past the fold, the writer folds to it
and decides again (a retry gets the refusal it was given; a saga step reacting
to another producer's event may arrive before the tail has folded that event).

The offsets are also the fence: records of one partition get consecutive
offsets, so if the batch's first offset is not where the fold ended, someone
else appended in between (an older owner that has not noticed it lost the
partition, or another producer). Then the writer folds the log to its end
instead, and every command whose events lost the race (an aggregate version
that was taken first: every fold keeps the first record of a version) is
decided again on the state the log now holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP, TopicT

from agents.dead_letters import SYSTEM
from agents.engine import partition_of
from app import faults, tracing
from app.command_bus import command_bus
from app.kafka_clients import started_consumer
from app.logs import LOG_CONTEXT
from app.main import app
from app.metrics import COMMAND_BATCH_SIZE, EVENTS_PROCESSED, STORES
from app.settings import settings
from app.stalls import stalls
from domain.decider import Decider
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope, utc_now
from models.tracing import Trace, trace_id_of
from tables.command_log import (
    Answered,
    Append,
    CommandKey,
    CommandLogFold,
    decide_batch,
    headers_for,
    recorded,
)
from tables.owners import owned_partitions, partitions_in, standby_partitions
from tables.partition_store import PartitionStore

log = logging.getLogger(__name__)

REMEMBERED_REJECTIONS = 10_000
"""Rejections each partition's writer remembers (a retry gets the same answer)."""
MAX_RACES = 5
"""Appends in a row that lose the race to another writer before the partition is
treated as no longer ours (held, folded again from the log)."""
MAX_BACKOFF_SECONDS = 5.0
TAIL_WAIT_MS = 100
"""Longest the tail's fetch waits to fill. What another producer appends is part of the
next decision; a saga step reacting to it may come sooner, and then a refusal checks
the log's end first (`PartitionWriter._write`), so the tail may trail as a read model
does."""


SIDES: dict[str, CommandSide] = {}
"""Every command side of this worker by name (readiness and /ops find them here)."""


class Watcher(Protocol):
    """Follows what a side's writers on this worker decide (bounds, gauges)."""

    def appended(self, partition: int, events: Sequence[EventEnvelope]) -> None: ...

    def released(self, partition: int) -> None: ...


class NotOwner(ConnectionError):
    """This worker does not decide the partition's commands (now): a system error, so an
    agent holds the message, and gives it up once the partition has moved."""


@dataclass(frozen=True)
class AppendedRecord:
    """A record this writer appended, as a fold reads it (ConsumerRecord's fields)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int
    headers: list[tuple[str, bytes]]


@dataclass
class Pending:
    command: CommandEnvelope
    answer: asyncio.Future[CommandResult]
    trace: Trace
    """The traceparent its events carry (models/tracing.py)."""


class CommandSide(faust.Service):
    """Decides one aggregate type's commands, a writer per partition owned here."""

    def __init__(
        self,
        decider: Decider[Any, Any, Any],
        commands: TopicT | None,
        events: TopicT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.decider = decider
        self.name = f"{decider.aggregate_type}-commands"
        self.events = events
        self.events_topic = events.get_topic_name()
        self.fold = CommandLogFold(self.name, self.events_topic, decider)
        self.writers: dict[int, PartitionWriter] = {}
        self.standbys: dict[int, Standby] = {}
        """Stores of the partitions this worker stands by for, folded by the tail."""
        self._probe: AIOKafkaConsumer | None = None
        self._probe_started = asyncio.Lock()
        self.watchers: list[Watcher] = []
        """Told what this worker's writers append and when a partition leaves."""
        if commands is not None:  # its HTTP commands come straight here
            command_bus.local[commands.get_topic_name()] = self
        SIDES[self.name] = self
        STORES[self.name] = lambda: {p: w.store for p, w in self.writers.items()}
        app.on_partitions_revoked.connect(cast(Any, self._on_revoked))
        app.on_partitions_assigned.connect(cast(Any, self._on_assigned))

    def store_path(self, partition: int) -> Path:
        return Path(app.conf.datadir) / "commands" / self.decider.aggregate_type / f"p{partition}"

    def catching_up(self) -> list[int]:
        """Partitions decided here that have not folded their log to its end since they
        were assigned (a writer folding again after a system error is stalled, not new)."""
        return sorted(p for p, writer in self.writers.items() if not writer.reached_end_once)

    def owns(self, aggregate_id: str) -> bool:
        return partition_of(aggregate_id.encode()) in self.writers

    def submit(
        self, command: CommandEnvelope, trace: Trace = None
    ) -> asyncio.Future[CommandResult]:
        """Queue the command behind those that arrived before it; the future is its answer
        once its events (if any) are in the log, carrying `trace`. NotOwner if its
        partition is not decided here."""
        partition = partition_of(command.aggregate_id.encode())
        writer = self.writers.get(partition)
        if writer is None:
            raise NotOwner(f"{self.name}: partition {partition} is not decided on this worker")
        return writer.submit(command, trace)

    async def decide(self, command: CommandEnvelope, trace: Trace = None) -> CommandResult:
        return await self.submit(command, trace)

    async def on_stop(self) -> None:
        for partition in list(self.writers):
            await self.writers.pop(partition).stop()
        for partition in list(self.standbys):
            self.standbys.pop(partition).stop()
        if self._probe is not None:
            await self._probe.stop()

    async def log_end(self, partition: int) -> int:
        """The offset after the last event of `partition` now (one request to the broker)."""
        async with self._probe_started:
            if self._probe is None:
                self._probe = await started_consumer(group_id=None)
        tp = TopicPartition(self.events_topic, partition)
        return cast(int, (await self._probe.end_offsets([tp]))[tp])

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        for partition in partitions_in(revoked) & set(self.writers):
            await self.writers.pop(partition).stop()

    async def _on_assigned(self, sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        mine = owned_partitions()
        spare = standby_partitions() - mine if settings.standby_replicas > 0 else set()
        for partition in set(self.writers) - mine:
            await self.writers.pop(partition).stop()
        for partition in set(self.standbys) - spare:
            if partition not in mine:
                self.standbys.pop(partition).stop()
        for partition in sorted(mine - set(self.writers)):
            standby = self.standbys.pop(partition, None)
            if standby is not None:  # warm: its catch-up folds the tail only
                store = standby.hand_over()
            else:
                store = PartitionStore(self.store_path(partition))
            self.writers[partition] = writer = PartitionWriter(self, partition, store)
            writer.start()
        for partition in sorted(spare - set(self.standbys)):
            store = PartitionStore(self.store_path(partition))
            self.standbys[partition] = Standby(self, partition, store)
        standing_by = f", standing by for {sorted(spare)}" if spare else ""
        log.info("%s: deciding partitions %s%s", self.name, sorted(mine), standing_by)


class Tails(faust.Service):
    """What others append to the command sides' event topics, folded as it arrives: one
    consumer for every writer of this worker (each writer folds its own appends at once;
    the tail skips those by offset). Each event topic partition has one writer here, so
    the consumer's place in it is that writer's alone."""

    def __init__(self, sides: Sequence[CommandSide], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sides = list(sides)

    @faust.Service.task
    async def _tailing(self) -> None:
        consumer = await started_consumer(group_id=None, following=True, wait_ms=TAIL_WAIT_MS)
        following: dict[TopicPartition, PartitionWriter | Standby] = {}
        try:
            while not self.should_stop:
                try:
                    following = self._follow(consumer, following)
                    if not following:
                        await asyncio.sleep(0.1)
                        continue
                    batches = await consumer.getmany(timeout_ms=200, max_records=2000)
                    for tp, records in batches.items():
                        writer = following.get(tp)
                        if writer is not None and records:
                            await writer.fold_others(records)
                except SYSTEM as error:
                    log.warning("command sides' tail: %r", error)
                    following = {}  # assigned and sought afresh
                    await asyncio.sleep(1.0)
        finally:
            await consumer.stop()

    def _follow(
        self,
        consumer: AIOKafkaConsumer,
        following: dict[TopicPartition, PartitionWriter | Standby],
    ) -> dict[TopicPartition, PartitionWriter | Standby]:
        """Read the partitions whose writers have caught up, from where their stores end."""
        live: dict[TopicPartition, PartitionWriter | Standby] = {
            TopicPartition(side.events_topic, p): w
            for side in self.sides
            for p, w in side.writers.items()
            if w.caught_up and not w.stopped
        }
        if len(live) == sum(len(side.writers) for side in self.sides):
            # every writer caught up: the standbys next (a start is not slowed by them)
            live.update(
                (TopicPartition(side.events_topic, p), standby)
                for side in self.sides
                for p, standby in side.standbys.items()
            )
        if live != following:
            consumer.assign(list(live))
            for tp, writer in live.items():
                consumer.seek(tp, writer.store.offset(tp.topic))
        return live


class Standby:
    """A partition this worker stands by for: its store folds the partition's events as
    the tail reads them (from its own offset: an empty store from the log's start), so
    that when the partition is assigned here its writer catches up with the tail only.
    It decides nothing and serves nothing."""

    def __init__(self, side: CommandSide, partition: int, store: PartitionStore) -> None:
        self.side = side
        self.partition = partition
        self.store = store
        self.stopped = False

    async def fold_others(self, records: list[Any]) -> None:
        if self.stopped:
            return  # handed over or closed since the tail fetched these
        topic = self.side.events_topic
        new = [r for r in records if r.offset >= self.store.offset(topic)]
        if new:
            folded = self.side.fold.fold(new, self.store)
            self.store.write(folded.rows, {topic: new[-1].offset + 1})

    def hand_over(self) -> PartitionStore:
        """The store, for the partition's writer: the tail folds no more into it here."""
        self.stopped = True
        return self.store

    def stop(self) -> None:
        self.stopped = True
        self.store.close()


class PartitionWriter:
    """One partition's commands: decided in batches, appended once per batch."""

    def __init__(self, side: CommandSide, partition: int, store: PartitionStore) -> None:
        self.side = side
        self.partition = partition
        self.store = store
        self.queue: list[Pending] = []
        self.caught_up = False
        """Folded to the log's end: False again after a system error (what reached the
        log is unknown until it is folded again)."""
        self.reached_end_once = False
        self.stopped = False
        self._writing = False
        self.rejected: OrderedDict[CommandKey, Answered] = OrderedDict()
        self._arrived = asyncio.Event()
        self._lock = asyncio.Lock()
        """Held by a batch and a catch-up: a revocation waits for them to end."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def submit(self, command: CommandEnvelope, trace: Trace) -> asyncio.Future[CommandResult]:
        answer = asyncio.get_running_loop().create_future()
        self.queue.append(Pending(command, answer, trace))
        self._arrived.set()
        return answer

    async def stop(self) -> None:
        """After the batch in flight, if any (a catch-up stops at once: each of its writes
        is whole); what waits is answered NotOwner (its sender retries, or the new owner
        gets it from the command topic)."""
        self.stopped = True
        if self._task is not None:
            if not self._writing:
                self._task.cancel()
            async with self._lock:
                self._task.cancel()
        moved = NotOwner(f"{self.side.name}: partition {self.partition} moved")
        for pending in self.queue:
            if not pending.answer.done():
                pending.answer.set_exception(moved)
        self.queue.clear()
        self.store.close()
        for watcher in self.side.watchers:
            watcher.released(self.partition)

    async def _run(self) -> None:
        LOG_CONTEXT.set(
            {"agent": self.side.name, "topic": self.side.events_topic, "partition": self.partition}
        )  # this task's lines: the writer's own
        failures = 0
        while True:
            try:
                if not self.caught_up:
                    async with self._lock:
                        await self.catch_up()
                    self.caught_up = self.reached_end_once = True
                await self._arrived.wait()
                self._arrived.clear()
                while self.queue:
                    batch = self.queue[: settings.command_max_batch]
                    async with self._lock:
                        self._writing = True
                        try:
                            await self._write(batch)
                        finally:
                            self._writing = False
                    del self.queue[: len(batch)]  # only now: a failed batch is decided again
                failures = 0
                stalls.cleared(self.side.name)
            except SYSTEM as error:
                # what reached the log is unknown: fold it again before deciding anything
                failures += 1
                self.caught_up = False
                self._arrived.set()
                stalls.failed(self.side.name, error)
                await asyncio.sleep(min(MAX_BACKOFF_SECONDS, 0.1 * 2 ** min(failures, 6)))

    async def _write(self, batch: list[Pending]) -> None:
        commands = [pending.command for pending in batch]
        traces = {p.command.command_id: p.trace for p in batch if p.trace is not None}
        spans = tracing.SPANS
        deciding = None if spans is None else self._decide_spans(spans, batch, traces)
        checked_the_log = False
        for _ in range(MAX_RACES):
            decided = decide_batch(
                self.side.decider, commands, self.store, utc_now(), self.rejected
            )
            if decided.rejections and not checked_the_log:
                # A retry gets the refusal it was given, so it is given on the log as it is now:
                # what another producer appended may not have reached the tail yet, and a
                # saga step reacting to it can come first (its cause is in the log already).
                checked_the_log = True
                if await self.side.log_end(self.partition) > self.store.offset(
                    self.side.events_topic
                ):
                    await self.catch_up()
                    continue
            if not decided.appends:
                break
            await faults.reached("decided")
            if await self._append(decided.appends, traces):
                break
        else:
            raise NotOwner(f"{self.side.name}: partition {self.partition} has another writer")
        if deciding is not None:
            for span in deciding:
                span.end()
        if log.isEnabledFor(logging.DEBUG):
            self._log_answers(batch, decided.answers)
        COMMAND_BATCH_SIZE.labels(side=self.side.name).observe(len(batch))
        events = [event for append in decided.appends for event in append.result.events]
        for watcher in self.side.watchers:
            watcher.appended(self.partition, events)
        self.rejected.update(decided.rejections)
        while len(self.rejected) > REMEMBERED_REJECTIONS:
            self.rejected.popitem(last=False)
        for pending, answer in zip(batch, decided.answers, strict=True):
            if not pending.answer.done():
                pending.answer.set_result(answer)

    def _decide_spans(
        self, spans: tracing.Spans, batch: list[Pending], traces: dict[str, bytes]
    ) -> list[tracing.Span]:
        """A `decide` span for each traced command of the batch (its events carry that
        span's context from here on: `traces` is updated)."""
        started = []
        for pending in batch:
            command = pending.command
            trace = traces.get(command.command_id)
            if trace is None:
                continue
            span = spans.start(
                f"decide {command.command_type}",
                trace,
                {
                    "shop.command_id": command.command_id,
                    "shop.aggregate_id": command.aggregate_id,
                    "shop.correlation_id": command.correlation_id,
                    "shop.partition": self.partition,
                    "shop.batch": len(batch),
                },
            )
            traces[command.command_id] = span.traceparent
            started.append(span)
        return started

    def _log_answers(self, batch: list[Pending], answers: list[CommandResult]) -> None:
        """At debug level, a line for each command decided: an order's path, line by line."""
        for pending, answer in zip(batch, answers, strict=True):
            log.debug(
                "%s %s: %s at version %d",
                *(answer.command_type, answer.command_id, answer.outcome, answer.version),
                extra={
                    "correlation_id": answer.correlation_id,
                    "command_id": answer.command_id,
                    "aggregate_id": answer.aggregate_id,
                    "trace_id": trace_id_of(pending.trace),
                },
            )

    async def _append(self, appends: list[Append], traces: dict[str, bytes]) -> bool:
        """Append the batch's events, each with its command's trace; True if they all
        landed where this fold ended."""
        spans = tracing.SPANS
        appending = None
        if spans is not None:  # an `append` span in each traced command's trace
            appending, traces = [], {**traces}
            for append in appends:
                parent = traces.get(append.command.command_id)
                if parent is not None:
                    span = spans.start(f"append {self.side.events_topic}", parent)
                    appending.append(span)
                    traces[append.command.command_id] = span.traceparent
        sent = []
        for number, append in enumerate(appends):
            if number == 1:
                await faults.reached("append-mid-batch")
            trace = traces.get(append.command.command_id)
            headers = headers_for(append.command, append.fingerprint, trace)
            for event in append.result.events:
                value = event.model_dump_json().encode()
                key = event.aggregate_id.encode()
                future = await self.side.events.send(
                    key=key, value=value, partition=self.partition, headers=headers
                )
                sent.append((future, key, value, headers))
        await faults.reached("append-unacked")
        landed = await asyncio.gather(*(future for future, *_ in sent))
        if appending is not None:
            for span in appending:
                span.end()
        await faults.reached("appended")
        start = self.store.offset(self.side.events_topic)
        offsets = [metadata.offset for metadata in landed]
        if offsets != list(range(start, start + len(offsets))):
            log.warning(
                "%s: partition %d has another writer (appended at %d, folded to %d): "
                "folding the log again",
                self.side.name,
                self.partition,
                offsets[0],
                start,
            )
            await self.catch_up()
            return all(
                recorded(self.store, a.command.aggregate_id, a.command.command_id) is not None
                for a in appends
            )
        records = [
            AppendedRecord(
                self.side.events_topic,
                self.partition,
                metadata.offset,
                key,
                value,
                int(metadata.timestamp or 0),
                headers,
            )
            for metadata, (_, key, value, headers) in zip(landed, sent, strict=True)
        ]
        self._fold(records, offsets[-1] + 1)
        return True

    def _fold(self, records: list[Any], next_offset: int) -> None:
        folded = self.side.fold.fold(records, self.store)
        for record, error in folded.failures:  # the read model dead-letters them
            log.warning(
                "%s: skipped %s[%d]@%d: %r",
                self.side.name,
                record.topic,
                record.partition,
                record.offset,
                error,
            )
        self.store.write(folded.rows, {self.side.events_topic: next_offset})
        EVENTS_PROCESSED.labels(agent=self.side.name).inc(len(records))

    async def fold_others(self, records: list[Any]) -> None:
        """Fold records the tail read; those this writer folded already are skipped."""
        if records[-1].offset >= self.store.offset(self.side.events_topic):
            await faults.reached("tail-fold")
        async with self._lock:
            if self.stopped or not self.caught_up:
                return  # its next catch-up reads them
            new = [r for r in records if r.offset >= self.store.offset(self.side.events_topic)]
            if new:
                self._fold(new, new[-1].offset + 1)

    async def catch_up(self) -> None:
        """Fold the partition's events from the store's offset to the log's end."""
        started = time.monotonic()
        topic = self.side.events_topic
        tp = TopicPartition(topic, self.partition)
        consumer: AIOKafkaConsumer = await started_consumer(group_id=None)
        folded = 0
        try:
            consumer.assign([tp])
            consumer.seek(tp, self.store.offset(topic))
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                batches = await consumer.getmany(tp, timeout_ms=200, max_records=5000)
                records = [r for r in batches.get(tp, []) if r.offset >= self.store.offset(topic)]
                position = await consumer.position(tp)
                if records or position > self.store.offset(topic):
                    self._fold(records, position)
                    folded += len(records)
        finally:
            await consumer.stop()
        if folded:
            log.info(
                "%s: partition %d folded %d events to offset %d in %.2fs",
                self.side.name,
                self.partition,
                folded,
                self.store.offset(topic),
                time.monotonic() - started,
            )
