"""Helpers for the analytics tests: read event topics, recompute windows by brute force."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from tests.system import System

CENT = Decimal("0.01")


def read_events(system: System, *names: str, partitions: int = 8) -> list[dict[str, Any]]:
    events = []
    for name in names:
        for raw in system.read_topic(name, partitions):
            events.append(json.loads(raw))
    return events


def produce(system: System, messages: list[tuple[str, bytes, bytes]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap)
        await producer.start()
        try:
            for topic, key, value in messages:
                await producer.send_and_wait(system.topic(topic), value=value, key=key)
        finally:
            await producer.stop()

    asyncio.run(send())


def epoch_ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def brute_force(events: list[dict[str, Any]], size_s: int) -> dict[int, dict[str, Any]]:
    """Window start -> figures, straight from the events (distinct ids), no shared code."""
    size = size_s * 1000
    seen: set[str] = set()
    out: dict[int, dict[str, Any]] = {}
    for e in events:
        if e["event_id"] in seen:
            continue
        seen.add(e["event_id"])
        at = epoch_ms(e["occurred_at"])
        start = at - at % size
        w = out.setdefault(
            start,
            {
                "orders_placed": 0,
                "orders_value": Decimal(0),
                "revenue": Decimal(0),
                "payments_captured": 0,
                "payments_declined": 0,
                "orders_shipped": 0,
                "cancelled_by_reason": {},
            },
        )
        p = e["payload"]
        kind = e["event_type"]
        if kind == "OrderPlaced":
            w["orders_placed"] += 1
            w["orders_value"] += Decimal(p["total"])
        elif kind == "PaymentCaptured":
            w["payments_captured"] += 1
            w["revenue"] += Decimal(p["amount"])
        elif kind == "PaymentDeclined":
            w["payments_declined"] += 1
        elif kind == "OrderShipped":
            w["orders_shipped"] += 1
        elif kind == "OrderCancelled":
            reasons = w["cancelled_by_reason"]
            reasons[p["reason"]] = reasons.get(p["reason"], 0) + 1
    for w in out.values():
        w["orders_value"] = str(w["orders_value"].quantize(CENT))
        w["revenue"] = str(w["revenue"].quantize(CENT))
    return {s: w for s, w in out.items() if any(v for v in w.values() if v not in ("0.00",))}


def brute_force_skus(events: list[dict[str, Any]], size_s: int, step_s: int) -> dict[int, Any]:
    """Hopping window start -> sku -> [quantity, revenue]."""
    size, step = size_s * 1000, step_s * 1000
    seen: set[str] = set()
    out: dict[int, dict[str, list[Any]]] = {}
    for e in events:
        if e["event_type"] != "OrderPlaced" or e["event_id"] in seen:
            continue
        seen.add(e["event_id"])
        at = epoch_ms(e["occurred_at"])
        first = at - at % step - size + step
        for start in range(first, at + 1, step):
            row = out.setdefault(start, {})
            for line in e["payload"]["lines"]:
                q, r = row.get(line["sku"], [0, Decimal(0)])
                row[line["sku"]] = [
                    q + line["quantity"],
                    r + Decimal(line["unit_price"]) * line["quantity"],
                ]
    return {
        s: {sku: [q, str(r.quantize(CENT))] for sku, (q, r) in row.items()}
        for s, row in out.items()
    }


FIELDS = (
    "orders_placed",
    "orders_value",
    "revenue",
    "payments_captured",
    "payments_declined",
    "orders_shipped",
    "cancelled_by_reason",
)


def api_windows(
    api: httpx.Client, family: str, first_ms: int, last_ms: int, size_s: int
) -> dict[int, Any]:
    """Every non-empty window between two event times, as the API reports it."""
    count = (last_ms - first_ms) // (size_s * 1000) + 2
    response = api.get(
        "/analytics/summary", params={"window": family, "last": count, "until": last_ms}
    )
    assert response.status_code == 200, response.text
    out = {}
    for w in response.json()["windows"]:
        figures = {k: w[k] for k in FIELDS}
        if any(v for v in figures.values() if v not in ("0.00",)):
            out[w["start_ms"]] = figures
    return out


def eventually(check: Any, timeout: float = 90.0, interval: float = 1.0) -> Any:
    """Wait until `check()` returns True (anything else is shown when it never does)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last is True:
            return last
        time.sleep(interval)
    raise AssertionError(f"not true after {timeout}s: {last!r}"[:4000])
