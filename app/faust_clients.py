"""faust's own Kafka producer and consumer as this app needs them: the one module that
reaches faust's and aiokafka's private API. (faust's consumer carries no data here:
every reader of the log runs on the engine, agents/engine.py, with plain aiokafka
consumers.)

The producer keeps aiokafka's metadata on every topic it writes to, and is idempotent;
its record batches can be built whole (app/record_batches.py).

aiokafka 0.14's client starts by tracking ALL topics (an empty topic set) and
`_wait_on_metadata` adds a topic to that set only when it is not known yet.
So the first send to a topic created after the producer started (another
worker's reply topic) narrows the set to that ONE topic: at the next refresh
the metadata of every other topic is dropped, and batches for them wait for a
leader that is never looked up again (until the 20-minute request timeout).
Seen as: a second worker joins, and commands time out with no error logged.
Adding a topic to "all topics" must keep tracking all topics.

The consumer asks the broker to hold an empty fetch 100 ms, not faust's fixed 1.5 s.
What it reads is next to nothing (the owners table's changelog, empty; rebuild
requests; the assignor's topic), but the offset lookups of faust's recovery go on
the same connection after a fetch in flight: at each start and each rebalance the two
of them waited 0.9 and 1.5 s behind empty fetches before any partition was served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiokafka
from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Producer

from app.kafka_clients import FILL_BYTES


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


FETCH_MAX_WAIT_MS = 100
"""How long the broker holds an empty fetch of faust's consumer: what a request of its
behind that fetch (an offset lookup of the recovery) waits at most."""


class ShopConsumerThread(AIOKafkaConsumerThread):
    """faust's consumer thread, its aiokafka consumer fetching with a short wait (faust
    passes a fixed 1.5 s, and no setting changes it)."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts
        return consumer


class ShopConsumer(Consumer):
    """faust's aiokafka consumer service, on ShopConsumerThread."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return ShopConsumerThread(self, loop=self.loop, beacon=self.beacon)


async def fetch_metadata(producer: Any, topic: str) -> None:
    """Load `topic`'s partitions into faust's producer (its aiokafka producer is private
    to faust: reached here, in the one module that knows it)."""
    await producer._ensure_producer().partitions_for(topic)


def kafka_producer(producer: Any) -> aiokafka.AIOKafkaProducer:
    """The aiokafka producer inside faust's producer service (for what faust does not
    send: whole record batches, app/record_batches.py)."""
    kafka: aiokafka.AIOKafkaProducer = producer._ensure_producer()
    return kafka


def record_batch_builder(producer: aiokafka.AIOKafkaProducer, size: int) -> BatchBuilder:
    """A record batch builder that takes `size` bytes (`create_batch` stops at the
    producer's batch size), compressed as the producer compresses. Its records are
    bytes already: no serializers."""
    accumulator: Any = producer._message_accumulator
    return BatchBuilder(size, accumulator._compression_type)


def set_fetch(consumer: aiokafka.AIOKafkaConsumer, *, min_bytes: int, max_wait_ms: int) -> None:
    """What the consumer's next fetch requests ask the broker for: return once `min_bytes`
    have arrived, or after `max_wait_ms` (aiokafka reads both when it builds each
    request; a started consumer has no setting for them)."""
    fetcher: Any = consumer._fetcher
    if fetcher is not None:
        fetcher._fetch_min_bytes = min_bytes
        fetcher._fetch_max_wait_ms = max_wait_ms


IDLE_WAIT_MS = 1000
"""An idle consumer's fetch: answered at its first record, else after this."""
IDLE_AFTER = 3
"""Fetches in a row that brought nothing before a consumer counts as idle."""


class FetchPace:
    """A following consumer's fetches, paced by what they bring. Busy, each waits the
    wait the consumer was started with to fill (one fetch brings many records: few
    requests, big batches). Idle (IDLE_AFTER fetches brought nothing), each is answered
    at its first record or after IDLE_WAIT_MS: an idle worker sent a fetch per reader
    every `wait_ms` (the saga's every 10 ms) for nothing, most of what it cost, and the
    first record after a pause comes at once instead of at the end of a wait. Its first
    record makes it busy again."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.wait_ms: int = consumer._fetch_max_wait_ms  # as it was started
        self.empty = 0
        self.idle = False

    def brought(self, records: int) -> None:
        """After each getmany: how many records it brought."""
        self.empty = 0 if records else self.empty + 1
        idle = self.empty >= IDLE_AFTER
        if idle != self.idle:
            self.idle = idle
            if idle:
                set_fetch(self.consumer, min_bytes=1, max_wait_ms=IDLE_WAIT_MS)
            else:
                set_fetch(self.consumer, min_bytes=FILL_BYTES, max_wait_ms=self.wait_ms)
