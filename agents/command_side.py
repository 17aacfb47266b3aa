"""The command side of one aggregate type: a writer per partition this worker owns
(agents/partition_writer.py: append first, fold the rest from the log), a warm store
of each partition it stands by for, and the tail that folds what others append.

What other producers append (older code, imports) is folded as it arrives by
the command sides' tail (`Tails`: one consumer for every writer of the worker), so
their events are part of the next decision. The tail trails by up to TAIL_WAIT_MS,
so a batch that refuses a command first asks the broker where the log ends (the
writer's business). The tail also folds the partitions this worker stands by for
(`Standby`), once every writer has caught up: when one of them is assigned here,
its writer takes the warm store and folds only the log's tail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP, TopicT

from agents.dead_letters import SYSTEM
from agents.engine import partition_of
from agents.partition_writer import NotOwner, PartitionWriter, Watcher
from app.command_bus import command_bus
from app.faust_clients import FetchPace, kafka_producer
from app.kafka_clients import started_consumer
from app.main import app
from app.metrics import STORES
from domain.decider import Decider
from models.envelope import CommandEnvelope, CommandResult
from models.tracing import Trace
from tables.command_log import CommandLogFold
from tables.owners import owned_partitions, partitions_in, standby_partitions
from tables.partition_store import PartitionStore

log = logging.getLogger(__name__)

TAIL_WAIT_MS = 100
"""Longest the tail's fetch waits to fill. What another producer appends is part of the
next decision; a saga step reacting to it may come sooner, and then a refusal checks
the log's end first (`PartitionWriter._write`), so the tail may trail as a read model
does."""


SIDES: dict[str, CommandSide] = {}
"""Every command side of this worker by name (readiness and /ops find them here)."""


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

    def producer(self) -> AIOKafkaProducer:
        """What the writers append with (app/record_batches.py)."""
        return kafka_producer(app.producer)

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
        spare = standby_partitions() - mine  # none unless SHOP_STANDBY_REPLICAS
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
        pace = FetchPace(consumer)
        following: dict[TopicPartition, PartitionWriter | Standby] = {}
        try:
            while not self.should_stop:
                try:
                    following = self._follow(consumer, following)
                    if not following:
                        await asyncio.sleep(0.1)
                        continue
                    batches = await consumer.getmany(timeout_ms=200, max_records=2000)
                    pace.brought(sum(len(records) for records in batches.values()))
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
