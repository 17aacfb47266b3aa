"""Every record the workers append goes through an idempotent producer (acks=all, a
producer id and sequence numbers), so a batch resent after a leader fails over is
not appended twice."""

from __future__ import annotations

from app.faust_clients import AllTopicsProducer, ShopProducer
from app.main import app


async def test_the_workers_producer_is_idempotent_with_acks_all() -> None:
    service = app.producer
    assert isinstance(service, ShopProducer)
    producer = service._new_producer()
    try:
        assert isinstance(producer, AllTopicsProducer)
        assert producer._txn_manager is not None  # aiokafka's idempotence state
        assert service._settings_extra()["acks"] == "all"
    finally:
        await producer.stop()
