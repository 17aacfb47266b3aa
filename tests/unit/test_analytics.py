"""Analytics as pure functions: window math, facts, the fold, lateness, dedup, expiry, top-k
(the answers' shaping: tables/analytics_answers.py), against a brute-force oracle."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.analytics import (
    Analytics,
    Config,
    InvalidConfig,
    check,
    empty_figures,
    expired_keys,
    fact_from_event,
    hopping_starts,
    label,
    sku_key,
    to_ms,
    trailing_hop_start,
    window_key,
    window_start,
)
from models.envelope import EventEnvelope
from tables.analytics_answers import derived, summary_starts, top_skus, window_row
from tests.unit.analytics_oracle import brute_force

CONFIG = Config()
T0 = 1_700_000_000_000 - 1_700_000_000_000 % 300_000  # a 5-minute boundary
NOW = T0 + 3_600_000  # the wall clock, past every fact


def fact(n: int, at: int, kind: str = "placed", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": f"e{n}", "at": at, "kind": kind}
    if kind == "placed":
        base |= {"amount": "30.00", "lines": [["A", 2, "20.00"], ["B", 1, "10.00"]]}
    elif kind in ("captured", "declined", "refunded"):
        base["amount"] = "30.00"
    elif kind == "cancelled":
        base["reason"] = "payment_declined"
    return base | extra


def mixed(count: int, rng: random.Random, spread_ms: int) -> list[dict[str, Any]]:
    kinds = ["placed", "placed", "captured", "declined", "cancelled", "shipped", "refunded"]
    facts = []
    for n in range(count):
        kind = rng.choice(kinds)
        extra: dict[str, Any] = {}
        if kind == "placed":
            skus = rng.sample(["A", "B", "C", "D", "E"], rng.randint(1, 3))
            lines = [[s, rng.randint(1, 4), f"{rng.randint(1, 9999) / 100:.2f}"] for s in skus]
            extra = {"lines": lines, "amount": f"{rng.randint(100, 99999) / 100:.2f}"}
        if kind == "cancelled":
            extra = {"reason": rng.choice(["payment_declined", "out_of_stock", "customer_request"])}
        facts.append(fact(n, T0 + rng.randint(0, spread_ms), kind, **extra))
    return facts


def windows_of(store: dict[str, Any], config: Config) -> tuple[dict[str, Any], dict[int, Any]]:
    families: dict[str, dict[int, Any]] = {f: {} for f in config.tumbling}
    skus: dict[int, Any] = {}
    for key, value in store.items():
        kind, family, start = [*key.split("/"), "", ""][:3]
        if kind == "w":
            families[family][int(start)] = value
        elif kind == "k":
            skus[int(start)] = value
    return families, skus


def normalized(windows: dict[str, Any], skus: dict[int, Any]) -> Any:
    def money(v: str) -> str:
        return str(Decimal(v).quantize(Decimal("0.01")))

    fams = {
        f: {
            s: {k: (money(v) if isinstance(v, str) else v) for k, v in fig.items()}
            for s, fig in ws.items()
        }
        for f, ws in windows.items()
    }
    sk = {s: {k: [q, money(r)] for k, (q, r) in row.items()} for s, row in skus.items()}
    return fams, sk


# --- window math -------------------------------------------------------------------------


def test_labels() -> None:
    assert [label(s) for s in (10, 60, 300, 90, 3600)] == ["10s", "1m", "5m", "90s", "1h"]


def test_tumbling_and_hopping_windows() -> None:
    assert window_start(T0 + 59_999, 60_000) == T0
    assert window_start(T0 + 60_000, 60_000) == T0 + 60_000
    starts = hopping_starts(T0 + 61_000, 300_000, 60_000)
    assert starts == [T0 - 180_000, T0 - 120_000, T0 - 60_000, T0, T0 + 60_000]
    assert all(s <= T0 + 61_000 < s + 300_000 for s in starts)
    assert trailing_hop_start(T0 + 61_000, 300_000, 60_000) == T0 - 180_000
    assert summary_starts(60, 2, T0 + 1) == [T0 - 120_000, T0 - 60_000, T0]


def test_config_rejects_nonsense_with_a_value_error_naming_the_field() -> None:
    with pytest.raises(InvalidConfig, match="must be a multiple of the hop step") as hop:
        Config(hop_size=300, hop_step=70)
    assert hop.value.field == "hop_size" and isinstance(hop.value, ValueError)
    with pytest.raises(InvalidConfig, match="must be at least the grace period") as retention:
        Config(grace=60, retention=30)
    assert retention.value.field == "retention"
    with pytest.raises(InvalidConfig, match="the two tumbling windows must differ") as same:
        Config(window=60, live_window=60)
    assert same.value.field is None
    check(Config())  # the defaults work together


# --- facts -------------------------------------------------------------------------------


def envelope(event_type: str, payload: dict[str, Any]) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        event_type=event_type,
        schema_version=1,
        aggregate_type="order",
        aggregate_id="o1",
        aggregate_version=1,
        occurred_at=datetime(2025, 1, 1, 12, 0, 5, tzinfo=UTC),
        correlation_id="o1",
        causation_id="c1",
        payload=payload,
    )


def test_facts_from_events() -> None:
    placed = envelope(
        "OrderPlaced",
        {
            "customer_id": "c",
            "lines": [
                {"sku": "A", "quantity": 3, "unit_price": "2.50"},
                {"sku": "B", "quantity": 1, "unit_price": "10.00"},
            ],
            "discount": "1.00",
            "total": "16.50",
            "shipping_address": None,
        },
    )
    got = fact_from_event(placed)
    assert got is not None
    assert got["kind"] == "placed" and got["amount"] == "16.50"
    assert got["lines"] == [["A", 3, "7.50"], ["B", 1, "10.00"]]
    assert got["at"] == to_ms(placed.occurred_at) and got["id"] == str(placed.event_id)
    captured = fact_from_event(envelope("PaymentCaptured", {"customer_id": "c", "amount": "5"}))
    assert captured is not None and captured["amount"] == "5.00"
    cancelled = fact_from_event(
        envelope("OrderCancelled", {"reason": "out_of_stock", "previous_status": "paid"})
    )
    assert cancelled is not None and cancelled["reason"] == "out_of_stock"
    assert fact_from_event(envelope("OrderPaid", {"amount": "5.00"})) is None


# --- the fold --------------------------------------------------------------------------------


def test_in_order_fold_equals_brute_force() -> None:
    facts = mixed(600, random.Random(1), 20 * 60_000)
    facts.sort(key=lambda f: f["at"])
    store: dict[str, Any] = {}
    state = Analytics(store, CONFIG)
    outcomes = [state.apply(f, T0 + 3_600_000) for f in facts]
    assert set(outcomes) == {"folded"}
    assert normalized(*windows_of(store, CONFIG)) == normalized(*brute_force(facts, CONFIG))
    assert state.meta()["processed"] == 600 and state.meta()["late"] == {}


def test_out_of_order_within_grace_lands_in_its_window() -> None:
    rng = random.Random(2)
    facts = sorted(mixed(400, rng, 10 * 60_000), key=lambda f: f["at"])
    # shuffle locally: each fact at most 20 s away from its in-order position (grace 30 s)
    arrival = sorted(facts, key=lambda f: f["at"] + rng.randint(0, 20_000))
    store: dict[str, Any] = {}
    state = Analytics(store, CONFIG)
    assert {state.apply(f, T0 + 3_600_000) for f in arrival} == {"folded"}
    assert normalized(*windows_of(store, CONFIG)) == normalized(*brute_force(facts, CONFIG))


def test_redelivery_counts_once() -> None:
    facts = mixed(200, random.Random(3), 5 * 60_000)
    store: dict[str, Any] = {}
    state = Analytics(store, CONFIG)
    for f in sorted(facts, key=lambda f: f["at"]):
        state.apply(f, T0)
    again = [state.apply(f, T0) for f in facts[:50]]
    assert again == ["duplicate"] * 50
    assert state.meta()["duplicates"] == 50
    assert normalized(*windows_of(store, CONFIG)) == normalized(*brute_force(facts, CONFIG))


def test_late_beyond_grace_is_counted_not_folded() -> None:
    store: dict[str, Any] = {}
    state = Analytics(store, CONFIG)
    assert state.apply(fact(1, T0 + 600_000, "captured"), NOW) == "folded"
    # its 10 s and 1 m windows ended long ago (more than 30 s before the watermark)
    assert state.apply(fact(2, T0 + 100_000, "captured"), NOW) == "late"
    # within grace for the minute window (ended 20 s before), late for the 10 s one
    assert state.apply(fact(3, T0 + 550_000, "captured"), NOW) == "partly_late"
    # within grace for both
    assert state.apply(fact(4, T0 + 585_000, "shipped"), NOW) == "folded"
    meta = state.meta()
    assert meta["late"] == {"10s": 2, "1m": 1}
    assert meta["late_events"] == 2
    assert store.get(window_key("1m", T0 + 60_000)) is None
    assert store[window_key("1m", T0 + 540_000)]["captured"] == 1
    assert store.get(window_key("10s", T0 + 550_000)) is None
    assert store[window_key("10s", T0 + 580_000)]["shipped"] == 1


def test_late_order_misses_only_closed_hopping_windows() -> None:
    store: dict[str, Any] = {}
    state = Analytics(store, CONFIG)
    state.apply(fact(1, T0 + 600_000, "shipped"), NOW)
    # at T0+330 s: hop windows start T0+60..T0+300 s; those ending before T0+570 s are late
    assert state.apply(fact(2, T0 + 330_000), NOW) == "partly_late"
    assert state.meta()["late"]["5m"] == 1
    assert store.get(sku_key("5m", T0 + 60_000)) is None
    assert store[sku_key("5m", T0 + 300_000)]["A"] == [2, "20.00"]


def test_watermark_does_not_follow_a_clock_far_in_the_future() -> None:
    store: dict[str, Any] = {}
    state = Analytics(store, CONFIG)
    state.apply(fact(1, T0 + 86_400_000, "shipped"), now_ms=T0)
    assert state.meta()["watermark"] == T0 + 5 * 60_000
    # so events of the present are not all late
    assert state.apply(fact(2, T0 + 290_000, "shipped"), now_ms=T0) == "folded"


def test_expiry_bounds_the_state() -> None:
    config = Config(retention=600)
    store: dict[str, Any] = {}
    state = Analytics(store, config)
    for n in range(0, 7200, 5):  # two hours, a fact every 5 s
        state.apply(fact(n, T0 + n * 1000, "placed"), T0 + 7_200_000)
    for prefix, first_kept in state.expiry().items():
        for key in list(
            expired_keys(sorted(k for k in store if k.startswith(prefix)), prefix, first_kept)
        ):
            del store[key]
    watermark = state.meta()["watermark"]
    windows = [k for k in store if k.startswith("w/1m/")]
    # windows that ended within the retention are kept, older ones are gone
    assert len(windows) == 11
    assert all(int(k.split("/")[2]) + 60_000 + 600_000 >= watermark for k in windows)
    seen = [k for k in store if k.startswith("s/")]
    assert len(seen) <= (config.seen_keep_ms + 120_000) // 5000
    # an event id still remembered is still deduplicated
    assert state.apply(fact(7195, T0 + 7_195_000, "placed"), T0) == "duplicate"


# --- reading ---------------------------------------------------------------------------------


def test_derived_figures() -> None:
    figures = empty_figures() | {
        "placed": 3,
        "placed_value": "100.00",
        "captured": 3,
        "declined": 1,
        "revenue": "75.50",
        "cancelled": {"out_of_stock": 2, "payment_declined": 1},
    }
    out = derived(figures, 10)
    assert out["average_order_value"] == "33.33"
    assert out["decline_rate"] == 0.25
    assert out["orders_per_second"] == 0.3
    assert out["revenue"] == "75.50"
    assert out["orders_cancelled"] == 3
    empty = derived(empty_figures(), 60)
    assert empty["average_order_value"] is None and empty["decline_rate"] is None


def test_a_window_row_is_closed_at_its_end_and_final_after_its_grace() -> None:
    row = window_row("1m", 60, T0, None, CONFIG, watermark=T0 + 90_001, now_ms=T0 + 60_000)
    assert (row["start_ms"], row["end_ms"], row["closed"], row["final"]) == (
        T0,
        T0 + 60_000,
        True,
        True,
    )
    assert row["start"].endswith("Z") and row["orders_placed"] == 0
    open_row = window_row("1m", 60, T0, None, CONFIG, watermark=T0 + 90_000, now_ms=T0 + 59_999)
    assert not open_row["closed"] and not open_row["final"]


def test_top_skus() -> None:
    skus = {"A": [5, "10.00"], "B": [5, "50.00"], "C": [1, "99.00"], "D": [7, "1.00"]}
    by_quantity = [s["sku"] for s in top_skus(skus, 3, "quantity")]
    by_revenue = [s["sku"] for s in top_skus(skus, 2, "revenue")]
    assert by_quantity == ["D", "B", "A"]
    assert by_revenue == ["C", "B"]
    assert top_skus({}, 5, "quantity") == []
