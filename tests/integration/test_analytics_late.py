"""Event time on the real broker: out-of-order events within the grace period land in their
window, older ones are counted as late (per window family), redelivered ones count once.

Events with chosen `occurred_at` are written straight to the event topics. They are of kinds
that make no service emit further order or payment events (payments and shipments of orders
that do not exist, cancellations), so the only metric events are these.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.integration.analytics_support import eventually, produce
from tests.system import System, Worker

pytestmark = pytest.mark.integration

GRACE = 5


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    shop = System(tmp_path_factory.mktemp("late"), ANALYTICS_GRACE_SECONDS=str(GRACE))
    yield shop
    shop.stop()


@pytest.fixture(scope="module")
def api(system: System) -> httpx.Client:
    worker: Worker = system.worker().wait_ready(timeout=240)
    return httpx.Client(base_url=worker.url, timeout=30)


BASE = int(time.time() * 1000) - 3_600_000
BASE -= BASE % 300_000  # 5-minute aligned, an hour ago


def event(kind: str, second: int, **payload: Any) -> tuple[str, bytes, bytes]:
    order = f"late-{uuid.uuid4().hex[:10]}"
    aggregate = "order" if kind.startswith("Order") else "payment"
    envelope = {
        "event_id": str(uuid.uuid4()),
        "event_type": kind,
        "schema_version": 1,
        "aggregate_type": aggregate,
        "aggregate_id": order,
        "aggregate_version": 1,
        "occurred_at": datetime.fromtimestamp((BASE + second * 1000) / 1000, UTC).isoformat(),
        "correlation_id": order,
        "causation_id": "test",
        "payload": payload,
    }
    topic = "orders.events" if aggregate == "order" else "payments.events"
    return topic, order.encode(), json.dumps(envelope).encode()


def captured(second: int, amount: str = "10.00") -> tuple[str, bytes, bytes]:
    return event("PaymentCaptured", second, customer_id="c", amount=amount)


def shipped(second: int) -> tuple[str, bytes, bytes]:
    return event("OrderShipped", second, shipment_id="s1")


def cancelled(second: int, reason: str) -> tuple[str, bytes, bytes]:
    return event("OrderCancelled", second, reason=reason, previous_status="pending")


def health(api: httpx.Client) -> dict[str, Any]:
    return dict(api.get("/analytics/live").json()["health"])


def processed(api: httpx.Client, count: int) -> None:
    def check() -> Any:
        response = api.get("/analytics/live")
        if response.status_code != 200:
            return None
        h = response.json()["health"]
        return h["facts_processed"] + h["duplicates_ignored"] >= count or h

    eventually(check, timeout=90, interval=0.5)


def windows(api: httpx.Client, family: str, size: int) -> dict[int, dict[str, Any]]:
    last = BASE + 400_000
    response = api.get(
        "/analytics/summary", params={"window": family, "last": 400 // size + 2, "until": last}
    )
    return {
        (w["start_ms"] - BASE) // 1000: w
        for w in response.json()["windows"]
        if w["payments_captured"] or w["orders_shipped"] or w["orders_cancelled"]
    }


def test_late_and_out_of_order_events(system: System, api: httpx.Client) -> None:
    # phase 1: one 10 s window's worth, in any order
    first = [captured(1, "1.00"), captured(3, "2.00"), shipped(5), cancelled(8, "customer_request")]
    produce(system, first)
    processed(api, 4)
    # phase 2: time moves on to 300 s
    produce(system, [captured(300, "5.00"), shipped(301)])
    processed(api, 6)
    # phase 3: stragglers. 296 s: in grace for both windows; 245 s: its 10 s window ended
    # 50 s ago (late), its minute ends at 300 s (in grace); 100 s: late for both
    produce(
        system,
        [captured(296, "7.00"), captured(245, "11.00"), cancelled(100, "out_of_stock")],
    )
    # and a redelivery of a phase-1 event
    produce(system, [first[0]])
    processed(api, 10)

    tens = windows(api, "10s", 10)
    assert sorted(tens) == [0, 290, 300]
    assert tens[0]["payments_captured"] == 2 and tens[0]["revenue"] == "3.00"  # redelivery: once
    assert tens[0]["orders_shipped"] == 1
    assert tens[0]["cancelled_by_reason"] == {"customer_request": 1}
    assert tens[290]["revenue"] == "7.00"
    assert tens[300]["revenue"] == "5.00" and tens[300]["orders_shipped"] == 1

    minutes = windows(api, "1m", 60)
    assert sorted(minutes) == [0, 240, 300]
    assert minutes[240]["revenue"] == "18.00"  # 296 s and the straggler from 245 s
    assert minutes[240]["payments_captured"] == 2
    assert all(w["cancelled_by_reason"].get("out_of_stock") is None for w in minutes.values())

    h = health(api)
    assert h["late"] == {"10s": 2, "1m": 1}
    assert h["late_events"] == 2
    assert h["duplicates_ignored"] == 1
    summary = api.get("/analytics/summary", params={"window": "10s", "last": 1}).json()
    assert summary["late"] == 2 and summary["grace_seconds"] == GRACE
