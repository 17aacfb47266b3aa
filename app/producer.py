"""faust's Kafka producer as this app needs it: the one module that reaches faust's and
aiokafka's private API. (faust's consumer carries no data here: every reader of the log
runs on the engine, agents/engine.py, with plain aiokafka consumers.)

The producer keeps aiokafka's metadata on every topic it writes to, and is idempotent.

aiokafka 0.14's client starts by tracking ALL topics (an empty topic set) and
`_wait_on_metadata` adds a topic to that set only when it is not known yet.
So the first send to a topic created after the producer started (another
worker's reply topic) narrows the set to that ONE topic: at the next refresh
the metadata of every other topic is dropped, and batches for them wait for a
leader that is never looked up again (until the 20-minute request timeout).
Seen as: a second worker joins, and commands time out with no error logged.
Adding a topic to "all topics" must keep tracking all topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiokafka
from aiokafka.client import AIOKafkaClient
from faust.transport.drivers.aiokafka import Producer


class AllTopicsProducer(aiokafka.AIOKafkaProducer):
    """An AIOKafkaProducer whose client never narrows "all topics" to a few."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        client = self.client

        def add_topic(topic: str) -> asyncio.Future[Any]:
            if not client._topics:  # tracking all: a refresh will include it
                return client.force_metadata_update()
            return AIOKafkaClient.add_topic(client, topic)

        client.add_topic = add_topic


class ShopProducer(Producer):
    """faust's aiokafka producer service, building AllTopicsProducer clients that are
    idempotent: when a partition's leader fails over, a batch whose ack was lost is
    sent again, and without a producer id and sequence numbers the new leader appends
    it a second time (seen in the soak: one event twice at the same version)."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}

    @property
    def _producer_type(self) -> type[aiokafka.AIOKafkaProducer]:
        return AllTopicsProducer


async def fetch_metadata(producer: Any, topic: str) -> None:
    """Load `topic`'s partitions into faust's producer (its aiokafka producer is private
    to faust: reached here, in the one module that knows it)."""
    await producer._ensure_producer().partitions_for(topic)
