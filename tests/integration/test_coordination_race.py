"""A reader whose consumer's group coordination died reads on through a new consumer.

aiokafka 0.14 asserts in a consumer's coordination task when its assignment changes
twice while the group's coordinator is being looked up (aio-libs/aiokafka#796): a
worker's start, when the partitions come right after the reader started. The task
dies and that consumer never fetches or commits again: the reader was held on a
"system error" for good, its partitions `catching_up` and its reads answered 503.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from agents.engine import Reader
from app.kafka_clients import client_options, coordination_died, started_consumer
from tables.partition_store import PartitionStore

pytestmark = pytest.mark.integration


class Reading(Reader):
    async def handle(self, partition: int, store: PartitionStore, records: list[object]) -> None:
        raise AssertionError("not called: the test fetches itself")


async def a_topic_with_records(topic: str, partition: int, count: int) -> None:
    admin = AIOKafkaAdminClient(**client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**client_options())
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(topic, b"%d" % n, partition=partition)
    finally:
        await producer.stop()


async def a_consumer_whose_coordination_died(group: str, topic: str) -> AIOKafkaConsumer:
    consumer = await started_consumer(group_id=group)
    consumer.assign([TopicPartition(topic, 0)])
    for _ in range(3):  # its coordination task wakes and starts looking the coordinator up
        await asyncio.sleep(0)
    consumer.assign([TopicPartition(topic, 1)])
    with pytest.raises(KafkaError, match="Unexpected error during coordination"):
        for _ in range(50):
            await consumer.getmany(timeout_ms=100)
    return consumer


@pytest.mark.timeout(60)  # without the fix the dead consumer's reader waits for ever
async def test_a_reader_reads_on_when_its_consumers_coordination_died(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    name = f"race-{uuid.uuid4().hex[:8]}"
    await a_topic_with_records(name, partition=1, count=3)
    reader = Reading(name, (name,))
    dead = await a_consumer_whose_coordination_died(reader.group, name)
    assert coordination_died(dead)
    reader._consumer = dead
    reader.stores[1] = store = PartitionStore(tmp_path / "p1")
    reader.reading = {1}
    try:
        await reader._read_again()
        assert reader._consumer is not dead
        assert not coordination_died(reader._consumer)
        fetched: list[bytes] = []
        for _ in range(50):
            batches = await reader._consumer.getmany(timeout_ms=100)
            fetched += [record.value for records in batches.values() for record in records]
            if len(fetched) == 3:
                break
        assert fetched == [b"0", b"1", b"2"]  # from the stored position, partition 1 only
    finally:
        await reader._consumer.stop()
        store.close()
