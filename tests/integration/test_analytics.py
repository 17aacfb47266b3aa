"""Analytics on two workers and 8 partitions: every window equals a brute-force recomputation
from the event topics (orders.events, payments.events), and redelivery does not double count.

Orders come from the load generator through both workers, so the events are spread over all
partitions and both workers' agents; the figures are read from either worker.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.load import run_load
from tables.analytics import RELEVANT
from tests.integration.analytics_support import (
    api_windows,
    brute_force,
    brute_force_skus,
    epoch_ms,
    eventually,
    produce,
    read_events,
)
from tests.system import System, Worker

pytestmark = pytest.mark.integration

# real-time events on a busy 2-core machine: a generous grace, so nothing here is late
ENV = {"ANALYTICS_GRACE_SECONDS": "900", "ANALYTICS_RETENTION_SECONDS": "3600"}


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    shop = System(
        tmp_path_factory.mktemp("analytics"),
        ANALYTICS_GRACE_SECONDS=ENV["ANALYTICS_GRACE_SECONDS"],
        ANALYTICS_RETENTION_SECONDS=ENV["ANALYTICS_RETENTION_SECONDS"],
    )
    yield shop
    shop.stop()


@pytest.fixture(scope="module")
def workers(system: System) -> list[Worker]:
    first, second = system.worker(), system.worker()
    return [first.wait_ready(timeout=240), second.wait_ready(timeout=240)]


@pytest.fixture(scope="module")
def loaded(workers: list[Worker]) -> Any:
    stats = asyncio.run(
        run_load(
            [w.url for w in workers], 400, 40.0, 40, 12, seed=7, progress=False, max_in_flight=16
        )
    )
    assert stats.accepted > 300, stats.summary()
    return stats


def settled(system: System, api: httpx.Client, family: str, size_s: int) -> Any:
    """(api, brute force) once they agree; the saga keeps producing events for a while."""

    def check() -> Any:
        events = read_events(system, "orders.events", "payments.events")
        times = [epoch_ms(e["occurred_at"]) for e in events]
        expected = brute_force(events, size_s)
        got = api_windows(api, family, min(times), max(times), size_s)
        return True if got == expected and expected else (got, expected)

    return eventually(check, timeout=150, interval=3)


def test_every_window_equals_the_brute_force(
    system: System, workers: list[Worker], loaded: Any
) -> None:
    for worker in workers:  # either worker answers, with the same figures
        api = httpx.Client(base_url=worker.url, timeout=30)
        assert settled(system, api, "1m", 60) is True
        assert settled(system, api, "10s", 10) is True
    api = httpx.Client(base_url=workers[1].url, timeout=30)
    summary = api.get("/analytics/summary", params={"window": "1m", "last": 30}).json()
    assert summary["late"] == 0
    placed = sum(w["orders_placed"] for w in summary["windows"])
    assert placed == loaded.accepted  # every accepted order, once, though 8 partitions fed it
    reasons = {r for w in summary["windows"] for r in w["cancelled_by_reason"]}
    assert "customer_request" in reasons


def test_top_skus_equal_the_brute_force(workers: list[Worker], system: System, loaded: Any) -> None:
    api = httpx.Client(base_url=workers[0].url, timeout=30)
    events = read_events(system, "orders.events")
    expected = brute_force_skus(events, 300, 60)
    for start, skus in expected.items():
        response = api.get(
            "/analytics/top-skus", params={"limit": 100, "until": start + 300_000 - 1}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["start_ms"] == start
        got = {row["sku"]: [row["quantity"], row["revenue"]] for row in body["by_quantity"]}
        assert got == skus, start
        quantities = [row["quantity"] for row in body["by_quantity"]]
        assert quantities == sorted(quantities, reverse=True)


def test_redelivered_events_count_once(workers: list[Worker], system: System, loaded: Any) -> None:
    api = httpx.Client(base_url=workers[0].url, timeout=30)
    before = api.get("/analytics/live").json()["health"]
    events = read_events(system, "orders.events", "payments.events")
    # send 50 stored events again, as a producer retry or a replay would
    import json

    again = [
        (
            "orders.events" if e["aggregate_type"] == "order" else "payments.events",
            e["aggregate_id"].encode(),
            json.dumps(e).encode(),
        )
        for e in events
        if e["event_type"] in ("OrderPlaced", "PaymentCaptured")
    ][:50]
    produce(system, again)

    def duplicates_seen() -> Any:
        health = api.get("/analytics/live").json()["health"]
        return health["duplicates_ignored"] - before["duplicates_ignored"] >= 50 or health

    eventually(duplicates_seen, timeout=60)
    assert settled(system, api, "1m", 60) is True


def test_endpoints_refuse_bad_parameters(workers: list[Worker]) -> None:
    api = httpx.Client(base_url=workers[0].url, timeout=30)
    assert api.get("/analytics/summary", params={"window": "7m"}).status_code == 422
    assert api.get("/analytics/summary", params={"last": "x"}).status_code == 422
    assert api.get("/analytics/summary", params={"until": "yesterday"}).status_code == 422
    assert api.get("/analytics/top-skus", params={"limit": "0"}).status_code == 422
    assert api.get("/static/../../etc/passwd").status_code == 404
    assert api.get("/static/vendor/uPlot.iife.min.js").status_code == 200


def test_workers_that_lose_their_disks_send_no_old_facts_again(
    system: System, workers: list[Worker], loaded: Any
) -> None:
    """The facts fold keeps no rows: a worker that lost its disk (or takes over a
    partition another worker folded) resumes from its progress commit, not from 0.
    So `analytics.facts` holds about one fact per relevant event (a batch in flight
    at the kill may go twice), not the whole history twice; the windows stay exact."""
    api = httpx.Client(base_url=workers[0].url, timeout=30)
    assert settled(system, api, "1m", 60) is True
    time.sleep(3)  # progress is committed every second
    for worker in workers:
        worker.kill()
        shutil.rmtree(worker.datadir)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_ready(timeout=240)
    assert settled(system, api, "1m", 60) is True  # refolded from analytics.facts

    def facts_and_events() -> tuple[int, int]:
        facts = sum(len(json.loads(m)) for m in system.read_topic("analytics.facts", 1))
        events = read_events(system, "orders.events", "payments.events")
        return facts, sum(e["event_type"] in RELEVANT for e in events)

    deadline = time.monotonic() + 60
    while (counts := facts_and_events())[0] < counts[1] and time.monotonic() < deadline:
        time.sleep(1)  # the saga's last steps may still be on their way
    facts, relevant = counts
    assert relevant > 500
    assert facts - relevant <= 100, (facts, relevant)  # 0 when idle; ~2x if sent again
