"""The services' consumer (faust's) may let its fetches fill: SERVICE_FETCH_WAIT_MS."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest

import app  # noqa: F401 - the App and its agents first, as a worker imports them
from app import producer as shop_clients
from app.main import app as faust_app
from app.producer import SERVICE_FETCH_MIN_BYTES, ShopConsumer, ShopConsumerThread
from app.settings import Settings, settings
from tests.unit.app_process import shown_by_app


@pytest.mark.parametrize(("wait", "consumer"), [("8", "ShopConsumer"), ("0", "Consumer")])
def test_the_app_reads_its_inputs_with_the_shop_consumer_when_a_wait_is_set(
    wait: str, consumer: str
) -> None:
    shown = shown_by_app("app.transport.Consumer.__name__", SERVICE_FETCH_WAIT_MS=wait)
    assert shown == consumer


def shop_thread() -> ShopConsumerThread:
    thread = ShopConsumer._new_consumer_thread(cast(ShopConsumer, faust_app.consumer))
    assert isinstance(thread, ShopConsumerThread)
    return thread


@pytest.mark.parametrize(
    ("wait", "min_bytes"),
    [(8, SERVICE_FETCH_MIN_BYTES), (0, 1)],  # 0: answered at the first record, as faust does
)
async def test_the_worker_consumer_fetches_wait_to_fill_as_set(
    monkeypatch: pytest.MonkeyPatch, wait: int, min_bytes: int
) -> None:
    monkeypatch.setattr(shop_clients, "settings", replace(settings, service_fetch_wait_ms=wait))
    thread = shop_thread()
    consumer = thread._create_worker_consumer(cast(Any, faust_app.transport))
    assert consumer._fetch_min_bytes == min_bytes
    if wait:
        assert consumer._fetch_max_wait_ms == wait


@pytest.mark.parametrize("raw", ["-1", "1001"])
def test_an_impossible_wait_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("SERVICE_FETCH_WAIT_MS", raw)
    with pytest.raises(
        SystemExit, match=f"SERVICE_FETCH_WAIT_MS must be between 0 and 1000, got {raw}"
    ):
        Settings()


def test_fetches_wait_up_to_ten_milliseconds_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SERVICE_FETCH_WAIT_MS", raising=False)
    assert Settings().service_fetch_wait_ms == 10
