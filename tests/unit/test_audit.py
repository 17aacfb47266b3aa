"""The soak's audit finds what it must: a log of one shipped and one cancelled order
passes, and each kind of damage (an event twice, a version gap, a double charge, stock
that leaks, an order left open, an accepted command missing) is reported."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from app.http_client import FinishedCommand
from bench.audit import Log, audit_log
from models import accounts, inventory, orders, payments
from models.envelope import EventEnvelope

AT = datetime(2026, 11, 30, tzinfo=UTC)


def envelope(kind: str, aggregate_id: str, version: int, event: BaseModel) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        event_type=type(event).event_type,  # type: ignore[attr-defined]
        schema_version=type(event).schema_version,  # type: ignore[attr-defined]
        aggregate_type=kind,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        occurred_at=AT,
        correlation_id="c",
        causation_id="c",
        payload=event.model_dump(mode="json"),
    )


def stream(kind: str, aggregate_id: str, *events: BaseModel) -> list[EventEnvelope]:
    return [envelope(kind, aggregate_id, n, e) for n, e in enumerate(events, start=1)]


LINE = orders.OrderLine(sku="S-1", quantity=2, unit_price="5.00")


def placed(customer: str = "ann") -> orders.OrderPlaced:
    return orders.OrderPlaced(
        customer_id=customer, lines=[LINE], discount="0.00", shipping_address=None, total="10.00"
    )


def story() -> Log:
    """Ann puts in 100.00, buys o-1 (shipped) and o-2 (declined... then refunded)."""
    return {
        "accounts.events": stream(
            "account",
            "ann",
            accounts.AccountOpened(owner="ann"),
            accounts.MoneyDeposited(amount="100.00"),
            accounts.MoneyWithdrawn(amount="10.00", reference="payment:o-1"),
            accounts.MoneyWithdrawn(amount="10.00", reference="payment:o-2"),
            accounts.MoneyDeposited(amount="10.00", reference="refund:o-2"),
            accounts.MoneyWithdrawn(amount="30.00", reference="cash"),
        ),
        "orders.events": stream(
            "order",
            "o-1",
            placed(),
            orders.OrderPaid(amount="10.00"),
            orders.OrderReserved(shipping_address=None),
            orders.OrderShipped(shipment_id="sh-1"),
        )
        + stream(
            "order",
            "o-2",
            placed(),
            orders.OrderPaid(amount="10.00"),
            orders.OrderCancelled(reason="out_of_stock", previous_status="paid"),
        ),
        "payments.events": stream(
            "payment",
            "o-1",
            payments.PaymentRequested(customer_id="ann", amount="10.00"),
            payments.PaymentCaptured(customer_id="ann", amount="10.00"),
        ),
        "inventory.events": stream(
            "stock",
            "S-1",
            inventory.StockAdded(quantity=5),
            inventory.StockReserved(order_id="o-1", quantity=2),
            inventory.StockCommitted(order_id="o-1", quantity=2),
        ),
        "reservations.events": [],
        "shipping.events": [],
    }


def problems(log: Log, answered: list[FinishedCommand] | None = None) -> list[str]:
    audit, _ = audit_log(log, answered or [])
    return audit.problems


def answered(
    path: str, body: dict[str, Any], status: int, answer: dict[str, Any]
) -> FinishedCommand:
    return FinishedCommand(path, body, status, json.dumps(answer).encode(), 0.0, 0.1, 1)


def test_a_sound_log_passes_every_check() -> None:
    audit, folded = audit_log(story(), [answered("/orders", {"order_id": "o-1"}, 202, {})])
    assert audit.problems == []
    assert folded.accounts["ann"].balance == 60
    assert audit.checks["money conserved"] == 1 and audit.checks["stock conserved"] == 1


def test_an_event_twice_and_a_version_gap_are_found() -> None:
    log = story()
    log["accounts.events"].append(log["accounts.events"][-1])
    log["orders.events"] = [e for e in log["orders.events"] if e.aggregate_version != 2]
    found = problems(log)
    assert any(p.startswith("no event twice: accounts.events") for p in found)
    assert any(p.startswith("versions 1..n: orders.events o-1") for p in found)


def test_a_double_charge_breaks_the_money() -> None:
    log = story()
    log["accounts.events"].append(
        envelope(
            "account", "ann", 7, accounts.MoneyWithdrawn(amount="10.00", reference="payment:o-1")
        )
    )
    found = problems(log)
    assert any(p.startswith("charged at most once: o-1") for p in found)
    assert any(p.startswith("a shipped order paid its total once: o-1") for p in found)


def test_a_cancelled_order_kept_charged_is_found() -> None:
    log = story()
    log["accounts.events"] = [
        e for e in log["accounts.events"] if e.payload.get("reference") != "refund:o-2"
    ]
    for n, event in enumerate(log["accounts.events"], start=1):
        log["accounts.events"][n - 1] = event.model_copy(update={"aggregate_version": n})
    assert any(p.startswith("a cancelled order costs nothing: o-2") for p in problems(log))


def test_stock_that_leaks_or_stays_reserved_is_found() -> None:
    log = story()
    log["inventory.events"] = log["inventory.events"][:2]  # reserved, never committed
    assert any(p.startswith("stock conserved: S-1") for p in problems(log))


def test_an_open_order_is_found() -> None:
    log = story()
    log["orders.events"] += stream("order", "o-3", placed())
    assert any(p.startswith("every order final: o-3") for p in problems(log))


def test_an_accepted_command_missing_from_the_log_is_found() -> None:
    lost = [
        answered("/orders", {"order_id": "o-9"}, 202, {}),
        answered("/accounts/ann/deposits", {"amount": "5.00"}, 201, {"version": 9}),
        answered("/accounts/ann/deposits", {"amount": "1.00"}, 201, {"version": 2}),
    ]
    found = problems(story(), lost)
    assert sum(p.startswith("accepted commands in the log") for p in found) == 3
