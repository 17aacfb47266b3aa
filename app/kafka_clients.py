"""The plain aiokafka clients' connection options (replies, admin, lag, tools), and the
consumer every reader of the log starts with (`started_consumer`)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer

from app.settings import settings

PARTITION_FETCH_BYTES = 1024 * 1024
"""Most a fetch of the readers brings of one partition (about 3,000 events): a worker
catching up reads every partition of several topics at once, and what a fetch brings
waits in memory until it is folded. A worker folding a million accounts from an empty
disk peaked at 309 MB with 4 MiB and 277 MB with this, ready 72 s after its start
instead of 67 (bench.peers, the memory figures in docs/benchmarks.md)."""


def client_options() -> dict[str, Any]:
    """bootstrap servers and, when configured, SASL/TLS, as aiokafka expects them."""
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers}
    protocol = settings.kafka_security_protocol
    if protocol != "PLAINTEXT":
        options["security_protocol"] = protocol
    if protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    if protocol.endswith("SSL"):
        import ssl

        options["ssl_context"] = ssl.create_default_context()
    return options


async def started_consumer(
    group_id: str | None, following: bool = False, wait_ms: int | None = None
) -> AIOKafkaConsumer:
    """A consumer for explicit assignment and seeks (no group membership; a group id
    only to commit progress to). `following`: it trails the log's end, so its fetches
    wait to fill (`wait_ms`, default FOLD_FOLLOW_WAIT_MS): a reader that trails the log by
    up to that fetches a few times a second per broker, not once for each record that
    arrives (writing fetch requests was a large share of a worker's CPU: bench.saga's
    profile, docs)."""
    wait = settings.fold_follow_wait_ms if wait_ms is None else wait_ms
    batching = {"fetch_min_bytes": 1024 * 1024, "fetch_max_wait_ms": wait}
    consumer = AIOKafkaConsumer(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        **(batching if following else {}),
        **client_options(),
    )
    await consumer.start()
    # let its coordinator's reset task start: cancelled before its first step (a stop
    # right after the start), aiokafka's close() raises CancelledError into the caller
    await asyncio.sleep(0)
    return consumer
