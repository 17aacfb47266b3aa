"""One consumer per worker for everything that trails the event logs.

The read models (agents/folds.py) and the command sides' tails
(agents/command_side.py) each fold some topic partitions from offsets they
store themselves. The follower reads each of those partitions once, from the
lowest offset any of them still needs, and hands each subscriber, in one batch,
the records at or past its own offset. Before, every fold had its own consumer
and fetched every record on its own: fifteen consumers per worker spent a
quarter of its CPU sending fetches (measured by bench.saga).

A subscriber that did not take what it was given (it failed, or it was busy
with a revocation) keeps its offset, and the follower seeks back to it, so it
gets those records again next round. Nothing is committed here: offsets live
with the rows they produced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.dead_letters import SYSTEM
from app.kafka_clients import client_options
from app.main import app
from app.settings import settings
from app.stalls import stalls

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 100
"""Longest a round waits for records when none have arrived."""
FOLLOW_WAIT_MS = 25
"""Longest the broker holds a following fetch to fill it: the read models trail the
log by up to this, and the worker fetches at most 40 times a second per broker
instead of once for each record that arrives."""
MAX_BACKOFF_SECONDS = 5.0


class Subscriber(Protocol):
    """A fold that trails some topic partitions from offsets it stores itself."""

    def wanted(self) -> dict[TopicPartition, int]:
        """The partitions it folds now, and the next offset it needs of each."""
        ...

    async def take(self, records: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Fold these records (those at or past its offsets; maybe none: a round went by).
        A system error (Kafka, disk) propagates: the round is read again."""
        ...


class Follower(faust.Service):
    """The worker's one trailing consumer, shared by every Subscriber."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subscribers: list[Subscriber] = []
        self.consumer: AIOKafkaConsumer | None = None
        self._starting = asyncio.Lock()
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._positions: dict[TopicPartition, int] = {}
        """Where the consumer reads next, per partition, as the follower set it."""

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    async def ready_consumer(self) -> AIOKafkaConsumer:
        """The consumer, started (a subscriber may need it before the follower starts:
        its progress commits and high-water marks go through it)."""
        async with self._starting:
            if self.consumer is None:
                self.consumer = await started_consumer(
                    group_id=f"{app.conf.id}-folds", following=True
                )
        return self.consumer

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's log end as last fetched; None before its first fetch."""
        if self.consumer is None or tp not in self._assigned:
            return None
        return self.consumer.highwater(tp)

    async def on_start(self) -> None:
        await self.ready_consumer()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    @faust.Service.task
    async def _following(self) -> None:
        failures = 0
        while not self.should_stop:
            consumer = self.consumer
            wanted = self._wanted()
            if consumer is None or not wanted:
                await asyncio.sleep(0.05)
                continue
            try:
                self._seek(consumer, wanted)
                batches = await consumer.getmany(
                    timeout_ms=FETCH_WAIT_MS, max_records=settings.fold_max_batch
                )
                for tp, records in batches.items():
                    if records:
                        self._positions[tp] = records[-1].offset + 1
                for subscriber in list(self.subscribers):
                    await self._hand(subscriber, batches)
                failures = 0
                stalls.cleared("follower")
            except SYSTEM as error:
                failures += 1
                stalls.failed("follower", error)
                self._assigned = frozenset()  # assigned and sought afresh
                await asyncio.sleep(min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** min(failures, 5)))

    def _wanted(self) -> dict[TopicPartition, int]:
        """Per partition, the lowest offset any subscriber needs next."""
        lowest: dict[TopicPartition, int] = {}
        for subscriber in self.subscribers:
            for tp, offset in subscriber.wanted().items():
                lowest[tp] = min(offset, lowest.get(tp, offset))
        return lowest

    def _seek(self, consumer: AIOKafkaConsumer, wanted: dict[TopicPartition, int]) -> None:
        """Read exactly the wanted partitions; back to an offset someone still needs (a
        new partition, or a subscriber that did not take its last records)."""
        if frozenset(wanted) != self._assigned:
            consumer.assign(list(wanted))
            self._assigned = frozenset(wanted)
            self._positions = {}
        for tp, offset in wanted.items():
            position = self._positions.get(tp)
            if position is None or offset < position:
                consumer.seek(tp, offset)
                self._positions[tp] = offset

    async def _hand(self, subscriber: Subscriber, batches: dict[TopicPartition, Any]) -> None:
        mine = subscriber.wanted()
        given = {
            tp: new
            for tp, records in batches.items()
            if tp in mine and (new := [r for r in records if r.offset >= mine[tp]])
        }
        await subscriber.take(given)


async def started_consumer(group_id: str | None, following: bool = False) -> AIOKafkaConsumer:
    """A consumer for explicit assignment and seeks (no group membership; a group id
    only to commit progress to). `following`: it trails the log's end, off any
    command's path, so its fetches wait to fill (FOLLOW_WAIT_MS)."""
    batching = {"fetch_min_bytes": 1024 * 1024, "fetch_max_wait_ms": FOLLOW_WAIT_MS}
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


follower = Follower()
"""This worker's follower (a faust service of the app)."""
app.service(follower)  # type: ignore[arg-type]
