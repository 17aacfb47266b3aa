"""The order read models as batched folds: by id with its indexes by customer and by
status (written with the order's state), and the saga timeline.

A batch that is folded again after a crash writes the same rows, so the indexes must
come out the same whatever the batches' bounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from domain.orders import ORDERS
from models.envelope import CommandEnvelope, EventEnvelope
from tables.orders import Timeline, orders_in, orders_of, orders_read_model
from tables.read_models import Folded
from tests.unit.records import Record, Rows

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def order_events() -> list[EventEnvelope]:
    """o-1 placed by c-1, then paid."""
    state = ORDERS.initial_state("o-1")
    place = {
        "customer_id": "c-1",
        "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "10.00"}],
    }
    events: list[EventEnvelope] = []
    for n, (kind, payload) in enumerate([("PlaceOrder", place), ("MarkPaid", {"amount": "10.00"})]):
        command = CommandEnvelope(
            command_id=f"o-1-{n}",
            command_type=kind,
            aggregate_id="o-1",
            payload=payload,
            correlation_id="o-1",
        )
        result, state = ORDERS.execute(command, state, NOW)
        events += result.events
    return events


def records(*envelopes: EventEnvelope, topic: str = "orders.events") -> list[Record]:
    return [Record(n, e.model_dump_json().encode(), topic=topic) for n, e in enumerate(envelopes)]


def rows_of(folded: Folded) -> dict[bytes, Any]:
    return {k: None if v is None else json.loads(v) for k, v in folded.rows.items()}


def test_each_order_change_updates_the_customer_and_status_indexes_in_the_same_write() -> None:
    placed, paid = order_events()
    folded = orders_read_model.fold(records(placed, paid), Rows())
    assert folded.outputs == []  # nothing is sent: the indexes are rows of this store
    store = Rows()
    store.apply(folded)
    assert [o["status"] for o in orders_of(store, "c-1")] == ["paid"]
    assert [o["order_id"] for o in orders_in(store, "paid", None, 10)] == ["o-1"]
    assert orders_in(store, "pending", None, 10) == []


def test_the_indexes_come_out_the_same_whatever_the_batches() -> None:
    placed, paid = order_events()
    together = Rows()
    together.apply(orders_read_model.fold(records(placed, paid), together))
    apart = Rows()
    apart.apply(orders_read_model.fold(records(placed), apart))
    apart.apply(orders_read_model.fold(records(placed, paid), apart))  # folded again
    assert together == apart
    assert set(apart) == {b"s/o-1", b"x/c/c-1/o-1", b"x/s/paid/o-1"}


def test_the_timeline_has_one_row_per_event_across_the_saga_topics() -> None:
    placed, paid = order_events()
    batch = records(placed, paid) + records(placed)  # a repeat: the same key
    folded = Timeline().fold(batch, Rows())

    steps = [json.loads(v) for _, v in sorted(folded.rows.items()) if v is not None]
    assert [s["event_type"] for s in steps] == ["OrderPlaced", "OrderPaid"]
    assert {s["service"] for s in steps} == {"orders"}
    assert all(key.startswith(b"o-1/") for key in folded.rows)
