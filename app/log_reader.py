"""A stretch of one partition, read straight from Kafka outside faust's consumer.

For repairs, which are rare: the messages faust skipped at a rebalance, the
versions a read model lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from app.kafka_clients import client_options


@dataclass(frozen=True)
class LoggedMessage:
    """One record, shaped like the part of faust's Message the agents use."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


async def read_range(
    topic: str, partition: int, start: int, stop: int, *, key: bytes | None = None
) -> list[LoggedMessage]:
    """The records at offsets start <= offset < stop (what retention left of them),
    only those with `key` when given; tombstones are left out."""
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **client_options(),
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        found: list[LoggedMessage] = []
        while await consumer.position(tp) < stop:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
            found += [
                LoggedMessage(topic, partition, r.offset, r.key, r.value)
                for r in batches.get(tp, [])
                if r.offset < stop and r.value is not None and (key is None or r.key == key)
            ]
        return found
    finally:
        await consumer.stop()
