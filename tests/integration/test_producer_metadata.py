"""A producer keeps delivering to every topic after a topic is created under it.

aiokafka's own producer does not (see app/faust_clients.py): after its first send to a
topic created since it started, a send to any topic it knew before waits forever.
"""

from __future__ import annotations

import asyncio
import uuid

import aiokafka
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from app.faust_clients import AllTopicsProducer

pytestmark = pytest.mark.integration


async def known_to_all_topics_fetch(producer: aiokafka.AIOKafkaProducer, topic: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        await producer.client.force_metadata_update()
        if producer.client.cluster.partitions_for_topic(topic) is not None:
            return
        assert loop.time() < deadline, f"{topic} never showed in an all-topics fetch"
        await asyncio.sleep(0.1)


async def keeps_delivering(producer_type: type[aiokafka.AIOKafkaProducer], bootstrap: str) -> bool:
    """True if a send to an old topic still completes after a send to a new one."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    old, new = f"{prefix}.old", f"{prefix}.new"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(old, 2, 1)])
    # long linger: the old topic's batch is still waiting when the new topic arrives
    # short request timeout: a batch that cannot find its leader fails instead of hanging
    producer = producer_type(bootstrap_servers=bootstrap, linger_ms=1000, request_timeout_ms=4000)
    await producer.start()
    try:
        # what faust does after declaring each topic: with no topic tracked yet, this
        # fetches the metadata of all of them. Until the broker has applied the create
        # (KRaft answers it first), that listing lacks the old topic, and the send below
        # would then track it by name: fetch all again until it is there.
        await known_to_all_topics_fetch(producer, old)
        await admin.create_topics([NewTopic(new, 1, 1)])
        waiting = await producer.send(old, b"sent before")  # known from the all-topics fetch
        await producer.send_and_wait(new, b"first send to a topic created since")
        try:
            await asyncio.wait_for(waiting, 15)
        except (TimeoutError, KafkaError):
            return False
        return True
    finally:
        await producer.stop()
        await admin.delete_topics([old, new])
        await admin.close()


async def test_a_new_topic_does_not_hide_the_others(kafka_bootstrap: str) -> None:
    assert await keeps_delivering(AllTopicsProducer, kafka_bootstrap)


async def test_aiokafka_alone_loses_them(kafka_bootstrap: str) -> None:
    """The bug the fix is for; fails once aiokafka fixes it (then drop AllTopicsProducer)."""
    assert not await keeps_delivering(aiokafka.AIOKafkaProducer, kafka_bootstrap)
