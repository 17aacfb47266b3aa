"""A following consumer's fetches, paced by what they bring (app/faust_clients.py
`FetchPace`): batched waits while records flow, a long poll answered at the first
record once several fetches in a row brought nothing.

No broker: aiokafka's fetcher is a stand-in holding the two values its requests read.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from app.faust_clients import IDLE_AFTER, IDLE_WAIT_MS, FetchPace
from app.kafka_clients import FILL_BYTES


def consumer(wait_ms: int = 10) -> Any:
    """A started following consumer: its fetcher asks what it was started with."""
    fetcher = SimpleNamespace(_fetch_min_bytes=FILL_BYTES, _fetch_max_wait_ms=10)
    return SimpleNamespace(_fetcher=fetcher, _fetch_max_wait_ms=wait_ms)


def asked(c: Any) -> tuple[int, int]:
    return c._fetcher._fetch_min_bytes, c._fetcher._fetch_max_wait_ms


def test_fetches_that_bring_nothing_turn_into_a_long_poll_and_a_record_ends_it() -> None:
    c = consumer()
    pace = FetchPace(c)
    for _ in range(IDLE_AFTER - 1):
        pace.brought(0)
    assert asked(c) == (FILL_BYTES, 10)  # a pause shorter than that changes nothing
    pace.brought(0)
    assert asked(c) == (1, IDLE_WAIT_MS) and pace.idle
    pace.brought(0)
    assert asked(c) == (1, IDLE_WAIT_MS)
    pace.brought(3)
    assert asked(c) == (FILL_BYTES, 10) and not pace.idle


def test_records_now_and_then_keep_it_batching() -> None:
    c = consumer(wait_ms=100)
    pace = FetchPace(c)
    for n in range(20):
        pace.brought(1 if n % IDLE_AFTER == 0 else 0)
        assert asked(c) == (FILL_BYTES, 10)  # never set: it stays as started


def test_a_consumer_not_started_has_no_fetcher_to_pace() -> None:
    pace = FetchPace(SimpleNamespace(_fetcher=None, _fetch_max_wait_ms=10))
    for _ in range(IDLE_AFTER + 1):
        pace.brought(0)
    assert pace.idle
