"""faust's Kafka clients as this app needs them: the one module that reaches their
private API.

The producer keeps aiokafka's metadata on every topic it writes to, and is idempotent.

aiokafka 0.14's client starts by tracking ALL topics (an empty topic set) and
`_wait_on_metadata` adds a topic to that set only when it is not known yet.
So the first send to a topic created after the producer started (another
worker's reply topic) narrows the set to that ONE topic: at the next refresh
the metadata of every other topic is dropped, and batches for them wait for a
leader that is never looked up again (until the 20-minute request timeout).
Seen as: a second worker joins, and commands time out with no error logged.
Adding a topic to "all topics" must keep tracking all topics.

The consumer (the services' inputs) lets its fetches fill. faust builds its aiokafka
consumer with fetch_min_bytes=1: the broker answers a fetch as soon as one record
arrived, and the consumer sends the next one at once. Under load that is a fetch
request per record or two, each a socket write on both sides, on the path of every
saga step. SERVICE_FETCH_WAIT_MS lets the broker hold a fetch until it has
SERVICE_FETCH_MIN_BYTES or the wait is over: a step waits up to that much longer, and
the worker sends far fewer requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiokafka
from aiokafka.client import AIOKafkaClient
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Producer

from app import faults
from app.settings import settings


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


SERVICE_FETCH_MIN_BYTES = 64 * 1024
"""Enough for a few hundred events: past it a fetch is answered before its wait ends."""


def batch_fetches(consumer: aiokafka.AIOKafkaConsumer) -> aiokafka.AIOKafkaConsumer:
    """Set a consumer's fetches to wait up to SERVICE_FETCH_WAIT_MS to fill (before it
    starts: its fetcher takes them then); 0 leaves them answered at the first record."""
    if settings.service_fetch_wait_ms > 0:
        consumer._fetch_min_bytes = SERVICE_FETCH_MIN_BYTES
        consumer._fetch_max_wait_ms = settings.service_fetch_wait_ms
    return consumer


def _dropping(handover: Any) -> Any:
    """faust's hand-over of each fetched message to the agents, losing the one SHOP_FAULT
    names (`handover:drop@N`: the N-th of an event topic) as faust can at a rebalance:
    read, never handed over."""

    async def callback(message: Any) -> Any:
        if message.topic.endswith(".events") and faults.dropped("handover"):
            return None
        return await handover(message)

    return callback


class ShopConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        return batch_fetches(super()._create_worker_consumer(transport))


class ShopConsumer(Consumer):
    """faust's aiokafka consumer, whose worker consumer batches its fetches; under the
    fault point `handover` it loses a message on purpose, as faust itself can."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "handover" in faults.FAULTS:
            self.callback = _dropping(self.callback)

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return ShopConsumerThread(self, loop=self.loop, beacon=self.beacon)
