"""The engine's fetch and hand-over (agents/engine.py): a reader's fetch waits outside its
lock, so a stop or a rebalance does not wait for it; what a fetch brings is handed over
only from the position the reader stored, never past a gap.

No broker: the consumer and the partition store are stand-ins.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from agents.engine import Misplaced, Reader
from tests.unit.records import Record

TOPIC = "t.events"
TP = TopicPartition(TOPIC, 3)


class Store:
    def __init__(self, offset: int) -> None:
        self.offsets = {TOPIC: offset}
        self.closed = False

    def offset(self, topic: str) -> int:
        return self.offsets[topic]

    def close(self) -> None:
        self.closed = True


class Consumer:
    """A consumer whose fetch waits until the test hands it records."""

    def __init__(self, log_start: int = 0) -> None:
        self.log_start = log_start
        self.fetched: asyncio.Queue[dict[TopicPartition, list[Any]]] = asyncio.Queue()
        self.fetching = asyncio.Event()
        self.stopped = False
        self.assigned: list[TopicPartition] = []
        self.ends: dict[TopicPartition, int] = {}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        self.fetching.set()
        return await self.fetched.get()

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.log_start for tp in tps}

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned = list(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        pass

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.ends.get(tp)

    async def commit(self, offsets: Any) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True


class Recording(Reader):
    def __init__(self) -> None:
        super().__init__("engine-fetch-test", ("events",))
        self.handled: list[list[int]] = []

    async def handle(self, partition: int, store: Any, records: list[Any]) -> None:
        self.handled.append([r.offset for r in records])
        store.offsets[TOPIC] = records[-1].offset + 1


def at(*offsets: int) -> list[Record]:
    return [Record(topic=TOPIC, partition=3, offset=o, value=b"{}") for o in offsets]


@pytest.fixture
def reader() -> Recording:
    reader = Recording()
    reader.topics = [TOPIC]
    reader.stores = {3: Store(5)}  # type: ignore[dict-item]
    reader.reading = {3}
    return reader


async def test_a_stop_does_not_wait_for_a_fetch_in_flight(reader: Recording) -> None:
    consumer = reader._consumer = Consumer()
    reading: Any = Reader._reading
    loop = asyncio.create_task(reading.fun(reader))
    await asyncio.wait_for(consumer.fetching.wait(), 1.0)
    reader._stopped.set()
    await asyncio.wait_for(reader.on_stop(), 0.5)  # the fetch is still waiting
    assert consumer.stopped and reader.stores == {}
    consumer.fetched.put_nowait({TP: at(5, 6)})  # what it brings after the stop
    await asyncio.wait_for(loop, 1.0)
    assert reader.handled == []


async def test_a_batch_is_handed_over_from_the_stored_position(reader: Recording) -> None:
    reader._consumer = Consumer()
    await reader._handle_what_arrived({TP: at(3, 4, 5, 6)})  # the store moved ahead meanwhile
    assert reader.handled == [[5, 6]]


async def test_a_batch_past_a_gap_is_not_handed_over(reader: Recording) -> None:
    reader._consumer = Consumer(log_start=0)
    with pytest.raises(Misplaced, match="fetched from 7, stored 5"):
        await reader._handle_what_arrived({TP: at(7, 8)})
    assert reader.handled == []


async def test_a_batch_from_the_log_start_past_a_stored_position_below_it_is(
    reader: Recording,
) -> None:
    # a command topic's retention removed offsets 5 and 6: they are gone, not skipped
    reader._consumer = Consumer(log_start=7)
    await reader._handle_what_arrived({TP: at(7, 8)})
    assert reader.handled == [[7, 8]]


async def test_a_partition_revoked_while_fetched_is_not_handed_over(reader: Recording) -> None:
    reader._consumer = Consumer()
    reader.reading = set()
    await reader._handle_what_arrived({TP: at(5, 6)})
    assert reader.handled == []


async def test_standby_partitions_are_read_once_the_owned_ones_reached_their_end(
    reader: Recording,
) -> None:
    # a worker starting on an empty disk folds what it serves first
    consumer = reader._consumer = Consumer()
    reader.stores[6] = Store(0)  # type: ignore[assignment]
    reader.standing_by = {6}
    reader._assign()
    assert consumer.assigned == [TP]
    assert reader.progress(standby=True)[0]["end"] is None  # not read: no end known
    consumer.ends[TP] = 5  # the owned partition's store is at 5: at its end
    reader._note_caught_up()
    assert reader.caught_up == {3}
    reader._assign()
    assert consumer.assigned == [TP, TopicPartition(TOPIC, 6)]
