"""One partition's commands (agents/command_side.py runs a writer per partition a
worker owns): append first, fold the rest from the log. A writer:

1. on assignment, folds the partition's events from its store's offset to the
   log's end (tables/command_log.py): before its first decision it has seen
   every event, whoever appended it;
2. takes the commands that have arrived (from the command topic's agent and
   from this worker's own HTTP requests), decides them in order against that
   fold (`decide_batch`), appends every accepted command's events in one go,
   each command's in one record batch (app/record_batches.py), acks=all, and
   waits once: group commit, so latency stays near one round trip while
   throughput grows with load;
3. writes what folding its appends would write (the states it decided, each
   command's events: `appended_rows`) with the offset after them, in one RocksDB
   write, then answers.

What other producers append (older code, imports) is folded as it arrives by the
command sides' tail (agents/command_side.py `Tails`: `fold_others`), so their events
are part of the next decision. The tail trails by up to its TAIL_WAIT_MS, so a batch
that refuses a command first asks the broker where the log ends: if it is past the
fold, the writer folds to it and decides again (a retry gets the refusal it was
given; a saga step reacting to another producer's event may arrive before the tail
has folded that event).

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
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.dead_letters import SYSTEM
from app import faults, tracing
from app.kafka_clients import started_consumer
from app.logs import LOG_CONTEXT
from app.metrics import COMMAND_BATCH_SIZE, EVENTS_PROCESSED
from app.record_batches import Record, pack, send_record_batch
from app.settings import settings
from app.stalls import stalls
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope, utc_now
from models.tracing import Trace, trace_id_of
from tables.command_log import (
    Answered,
    CommandKey,
    Decided,
    appended_rows,
    decide_batch,
    headers_for,
    recorded,
)
from tables.partition_store import PartitionStore

if TYPE_CHECKING:
    from agents.command_side import CommandSide

log = logging.getLogger(__name__)

REMEMBERED_REJECTIONS = 10_000
"""Rejections each partition's writer remembers (a retry gets the same answer)."""
MAX_RACES = 5
"""Appends in a row that lose the race to another writer before the partition is
treated as no longer ours (held, folded again from the log)."""
MAX_BACKOFF_SECONDS = 5.0


class Watcher(Protocol):
    """Follows what a side's writers on this worker decide (bounds, gauges)."""

    def appended(self, partition: int, events: Sequence[EventEnvelope]) -> None: ...

    def released(self, partition: int) -> None: ...


class NotOwner(ConnectionError):
    """This worker does not decide the partition's commands (now): a system error, so an
    agent holds the message, and gives it up once the partition has moved."""


@dataclass
class Pending:
    command: CommandEnvelope
    answer: asyncio.Future[CommandResult]
    trace: Trace
    """The traceparent its events carry (models/tracing.py)."""


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
        # looked up once: labels() per batch was 1 % of a busy worker's samples
        self._processed = EVENTS_PROCESSED.labels(agent=side.name)
        self._batch_size = COMMAND_BATCH_SIZE.labels(side=side.name)

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
            if await self._append(decided, traces):
                break
        else:
            raise NotOwner(f"{self.side.name}: partition {self.partition} has another writer")
        if deciding is not None:
            for span in deciding:
                span.end()
        if log.isEnabledFor(logging.DEBUG):
            self._log_answers(batch, decided.answers)
        self._batch_size.observe(len(batch))
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

    async def _append(self, decided: Decided, traces: dict[str, bytes]) -> bool:
        """Append the batch's events, each with its command's trace; True if they all
        landed where this fold ended."""
        appends = decided.appends
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
        groups = []  # each command's events: one record batch holds them all
        for append in appends:
            headers = headers_for(
                append.command, append.fingerprint, traces.get(append.command.command_id)
            )
            groups.append(
                [
                    Record(event.aggregate_id.encode(), event.model_dump_json().encode(), headers)
                    for event in append.result.events
                ]
            )
        producer = self.side.producer()
        timestamp = int(time.time() * 1000)
        sent = []
        for number, records in enumerate(pack(groups, settings.command_append_max_bytes)):
            if number == 1:
                await faults.reached("append-mid-batch")
            future = await send_record_batch(
                producer, self.side.events_topic, self.partition, records, timestamp
            )
            sent.append((future, records))
        await faults.reached("append-unacked")
        landed = await asyncio.gather(*(future for future, _ in sent))
        if appending is not None:
            for span in appending:
                span.end()
        await faults.reached("appended")
        start = self.store.offset(self.side.events_topic)
        offsets = [
            metadata.offset + n
            for metadata, (_, records) in zip(landed, sent, strict=True)
            for n in range(len(records))
        ]
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
        # what folding these records would write, from the decision: no decoding again
        rows = appended_rows(decided, [[r.value for r in group] for group in groups])
        self.store.write(rows, {self.side.events_topic: offsets[-1] + 1})
        self._processed.inc(len(offsets))
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
        self._processed.inc(len(records))

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
