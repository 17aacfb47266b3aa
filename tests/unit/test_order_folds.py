"""The order read models as batched folds: by id (with the feeds it sends on), the
per-customer and per-status views fed by them, and the saga timeline.

A batch that is folded again after a crash sends its feeds again, so each view
must come out the same whether a feed message arrives once or twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import app  # noqa: F401 - the App first: tables are declared on it
from domain.orders import ORDERS
from models.envelope import CommandEnvelope, EventEnvelope
from tables.orders import Timeline, customer_view, orders_read_model, status_view
from tables.read_models import Folded, Output
from tables.state_fold import state_key
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


def feed_records(outputs: list[Output], topic: str) -> list[Record]:
    mine = [o for o in outputs if o.topic == topic]
    return [Record(n, o.value, o.key, topic) for n, o in enumerate(mine)]


def rows_of(folded: Folded) -> dict[bytes, Any]:
    return {k: None if v is None else json.loads(v) for k, v in folded.rows.items()}


def test_each_order_change_feeds_the_customer_and_status_views() -> None:
    placed, paid = order_events()
    folded = orders_read_model.fold(records(placed, paid), Rows())

    assert rows_of(folded)[state_key("o-1")]["status"] == "paid"
    sent = [(o.topic, o.key, o.partition_by, o.value is not None) for o in folded.outputs]
    assert sent == [
        ("orders.by-customer", b"c-1/o-1", b"c-1", True),
        ("orders.by-status", b"pending/o-1", b"pending", True),
        ("orders.by-customer", b"c-1/o-1", b"c-1", True),
        ("orders.by-status", b"pending/o-1", b"pending", False),  # a tombstone
        ("orders.by-status", b"paid/o-1", b"paid", True),
    ]


def test_a_repeated_order_event_changes_nothing_and_sends_nothing() -> None:
    placed, paid = order_events()
    store = Rows()
    store.apply(orders_read_model.fold(records(placed, paid), store))

    again = orders_read_model.fold(records(paid), store)

    assert again.rows == {} and again.outputs == [] and again.failures == []


def test_the_views_come_out_the_same_when_a_batch_of_feeds_is_sent_twice() -> None:
    placed, paid = order_events()
    outputs = orders_read_model.fold(records(placed, paid), Rows()).outputs
    for index, topic in (
        (customer_view, "orders.by-customer"),
        (status_view, "orders.by-status"),
    ):
        once = Rows()
        once.apply(index.fold(feed_records(outputs, topic), once))
        twice = Rows()
        for _ in range(2):  # the whole batch folded and sent again after a crash
            twice.apply(index.fold(feed_records(outputs, topic), twice))
        assert once == twice, topic
    view = Rows()
    view.apply(status_view.fold(feed_records(outputs, "orders.by-status"), view))
    assert list(view) == [b"paid/o-1"]
    customer = Rows()
    customer.apply(customer_view.fold(feed_records(outputs, "orders.by-customer"), customer))
    assert json.loads(customer[b"c-1/o-1"])["status"] == "paid"


def test_an_older_feed_message_never_replaces_a_newer_row() -> None:
    newer = {"order_id": "o-1", "customer_id": "c", "status": "shipped", "version": 5}
    older = {**newer, "status": "paid", "version": 3}
    batch = [
        Record(0, json.dumps(newer).encode(), b"c/o-1", "orders.by-customer"),
        Record(1, json.dumps(older).encode(), b"c/o-1", "orders.by-customer"),
    ]
    folded = customer_view.fold(batch, Rows())
    assert rows_of(folded) == {b"c/o-1": newer}


def test_the_timeline_has_one_row_per_event_across_the_saga_topics() -> None:
    placed, paid = order_events()
    batch = records(placed, paid) + records(placed)  # a repeat: the same key
    folded = Timeline().fold(batch, Rows())

    steps = [json.loads(v) for _, v in sorted(folded.rows.items()) if v is not None]
    assert [s["event_type"] for s in steps] == ["OrderPlaced", "OrderPaid"]
    assert {s["service"] for s in steps} == {"orders"}
    assert all(key.startswith(b"o-1/") for key in folded.rows)


def test_a_feed_message_that_is_not_json_is_a_failure_and_the_rest_goes_on() -> None:
    good = {"order_id": "o-2", "customer_id": "c", "status": "paid", "version": 1}
    batch = [
        Record(0, b"{not json", b"c/o-1", "orders.by-customer"),
        Record(1, json.dumps(good).encode(), b"c/o-2", "orders.by-customer"),
        Record(2, json.dumps(good).encode(), None, "orders.by-customer"),  # no key
    ]
    folded = customer_view.fold(batch, Rows())
    assert [r.offset for r, _ in folded.failures] == [0, 2]
    assert rows_of(folded) == {b"c/o-2": good}
