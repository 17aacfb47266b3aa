"""faust's Kafka consumer (the services' inputs), with its fetches allowed to fill.

faust builds its aiokafka consumer with fetch_min_bytes=1: the broker answers a
fetch as soon as one record arrived, and the consumer sends the next one at once.
Under load that is a fetch request per record or two, each a socket write on both
sides, on the path of every saga step. SERVICE_FETCH_WAIT_MS lets the broker hold
a fetch until it has SERVICE_FETCH_MIN_BYTES or the wait is over: a step waits up to
that much longer, and the worker sends far fewer requests.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer

from app.settings import settings

SERVICE_FETCH_MIN_BYTES = 64 * 1024
"""Enough for a few hundred events: past it a fetch is answered before its wait ends."""


def batch_fetches(consumer: aiokafka.AIOKafkaConsumer) -> aiokafka.AIOKafkaConsumer:
    """Set a consumer's fetches to wait up to SERVICE_FETCH_WAIT_MS to fill (before it
    starts: its fetcher takes them then); 0 leaves them answered at the first record."""
    if settings.service_fetch_wait_ms > 0:
        consumer._fetch_min_bytes = SERVICE_FETCH_MIN_BYTES
        consumer._fetch_max_wait_ms = settings.service_fetch_wait_ms
    return consumer


class ShopConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        return batch_fetches(super()._create_worker_consumer(transport))


class ShopConsumer(Consumer):
    """faust's aiokafka consumer, whose worker consumer batches its fetches."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return ShopConsumerThread(self, loop=self.loop, beacon=self.beacon)
