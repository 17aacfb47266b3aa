"""Order read models: by id, by customer, by status, and each order's saga timeline.

All four are batched folds into partition stores (agents/folds.py). By id and
the timeline are keyed by order, like every saga topic. The customer and status
views are keyed by customer and by status, so the order fold feeds them through
repartition topics (`orders.by-customer`, `orders.by-status`; sent and acked
before its offset is stored) and their rows live in the partition of that key:
`customer/order` and `status/order`, read in key order by prefix. Each feed
message is a row of its view under the row's key, so the compacted feed is the
view's changelog (a store refolds from it). A feed message sent twice (a batch
folded again after a crash) changes nothing: each view keeps the newest version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from app.settings import settings
from domain.orders import ORDERS
from models.envelope import EventEnvelope
from models.orders import Order
from models.upcasting import decode_event
from tables.partition_store import PartitionStore
from tables.read_models import Folded, LogRecord, Output, Stored
from tables.state_fold import StateFold

SERVICE_OF = {
    "order": "orders",
    "payment": "payments",
    "reservation": "inventory",
    "stock": "inventory",
    "shipment": "shipping",
    "account": "accounts",
}


def summary(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status,
        "total": str(order.total),
        "version": order.version,
        "placed_at": order.placed_at.isoformat() if order.placed_at else None,
        "updated_at": order.updated_at.isoformat() if order.updated_at else None,
    }


BY_CUSTOMER = settings.topic("orders.by-customer")
BY_STATUS = settings.topic("orders.by-status")


def feeds(previous: Order | None, order: Order) -> list[Output]:
    """What one order change sends to the per-customer and per-status views: each
    message is the view's row (or a tombstone) under the row's own key, partitioned
    by the view's key, so the compacted feed is the view's changelog."""
    row = _json(summary(order))
    customer = order.customer_id.encode()
    sent = [Output(BY_CUSTOMER, _key(order.customer_id, order), row, customer)]
    was = None if previous is None else previous.status
    if was != order.status:
        if was is not None:
            sent.append(Output(BY_STATUS, _key(was, order), None, was.encode()))
        status = str(order.status)
        sent.append(Output(BY_STATUS, _key(status, order), row, status.encode()))
    return sent


def _key(view_key: str, order: Order) -> bytes:
    return f"{view_key}/{order.order_id}".encode()


def _json(row: dict[str, Any]) -> bytes:
    return json.dumps(row).encode()


orders_read_model: StateFold[Order] = StateFold(
    "orders-projection", "orders.events", ORDERS, on_change=feeds
)
"""Each order by id (`s/<order id>`); each change fed, repartitioned, to the two views below."""


class OrderView:
    """A view fed by the order fold: its feed's messages are its rows under their own
    keys (`customer/order`, `status/order`); a tombstone deletes. A message sent
    twice (its batch folded again after a crash) or an older summary never replaces
    a newer one."""

    def __init__(self, name: str, feed: str) -> None:
        self.name = name
        self.events: tuple[str, ...] = (feed,)

    def fold(self, records: Sequence[LogRecord], stored: Stored) -> Folded:
        folded = Folded()
        for record in records:
            try:
                if not record.key:
                    raise ValueError("a view's feed message needs its row's key")
                if record.value is None:
                    folded.rows[record.key] = None
                else:
                    _keep_newer(folded, stored, record.key, json.loads(record.value))
            except Exception as error:  # a pure fold: the record's fault
                folded.failures.append((record, error))
        return folded


customer_view = OrderView("orders-by-customer", "orders.by-customer")
"""customer/order -> the order's summary."""
status_view = OrderView("orders-by-status", "orders.by-status")
"""status/order -> the order's summary while it is in that status."""


def _keep_newer(folded: Folded, stored: Stored, key: bytes, row: dict[str, Any]) -> None:
    current = folded.current(key, stored)
    if current is None or json.loads(current)["version"] < int(row["version"]):
        folded.rows[key] = _json(row)


class Timeline:
    """Every saga event, by the order it belongs to: `order/time/version/event id` -> the step."""

    name = "orders-timeline"
    events: tuple[str, ...] = (
        "orders.events",
        "payments.events",
        "reservations.events",
        "shipping.events",
    )

    def fold(self, records: Sequence[LogRecord], stored: Stored) -> Folded:
        folded = Folded()
        for record in records:
            try:
                envelope = decode_event(record.value or b"")
                key, step = timeline_step(envelope)
                folded.rows[key] = _json(step)
            except Exception as error:
                folded.failures.append((record, error))
        return folded


def timeline_step(envelope: EventEnvelope) -> tuple[bytes, dict[str, Any]]:
    """One saga step's row; a repeated event gives the same key, so it is written once."""
    # time, then version: one command's events share a time but not a version
    at = envelope.occurred_at.isoformat()
    key = f"{envelope.correlation_id}/{at}/{envelope.aggregate_version:09d}/{envelope.event_id}"
    return key.encode(), {
        "at": at,
        "service": SERVICE_OF.get(envelope.aggregate_type, envelope.aggregate_type),
        "event_type": envelope.event_type,
        "event_id": str(envelope.event_id),
        "aggregate": f"{envelope.aggregate_type}:{envelope.aggregate_id}",
        "version": envelope.aggregate_version,
        "caused_by": envelope.causation_id,
        "payload": envelope.payload,
    }


def _rows(store: PartitionStore, prefix: str, after: str | None = None) -> Iterator[Any]:
    start = None if after is None else after.encode()
    for _, raw in store.with_prefix(prefix.encode(), after=start):
        yield json.loads(raw)


def timeline(store: PartitionStore, order_id: str) -> list[dict[str, Any]]:
    return list(_rows(store, f"{order_id}/"))


def orders_of(store: PartitionStore, customer_id: str) -> list[dict[str, Any]]:
    return list(_rows(store, f"{customer_id}/"))


def orders_in(
    store: PartitionStore, status: str, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """A page of orders in a status, in order id order, starting after `after`."""
    start = None if after is None else f"{status}/{after}"
    return list(islice(_rows(store, f"{status}/", after=start), limit))
