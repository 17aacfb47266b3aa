"""Order read models: by id, by customer, by status, and each order's saga timeline.

By id and the timeline are keyed by order, like every saga topic. The
customer and status views are keyed by customer and by status, so the order
projection feeds them through repartition topics (`orders.by-customer`,
`orders.by-status`) and their rows live in the partition of that key:
`customer/order` and `status/order`, read in key order by prefix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from domain.orders import ORDERS
from models.envelope import EventEnvelope
from models.orders import Order, OrderStatus
from tables.aggregates import aggregate_tables, table
from tables.ranges import rows_with_prefix
from tables.read_models import fold_into

order_side = aggregate_tables("order")
orders = table("orders", "Read model: each order's status, lines, totals and version.")
customer_orders = table("customer-orders", "Read model: customer_id/order_id -> summary.")
orders_by_status = table("orders-by-status", "Read model: status/order_id -> summary.")
order_timeline = table("order-timeline", "Read model: order_id/time/event_id -> saga step.")

SERVICE_OF = {
    "order": "orders",
    "payment": "payments",
    "reservation": "inventory",
    "stock": "inventory",
    "shipment": "shipping",
    "account": "accounts",
}


@dataclass(frozen=True)
class Feed:
    """A message for a repartitioned view: which view, its key, the bytes."""

    view: str
    key: str
    value: bytes


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


BY_ID = {"orders": orders}
"""The by-id read model by table name; a rebuild folds into a dict with this name."""


def project(envelope: EventEnvelope, views: Mapping[str, Any] = BY_ID) -> list[Feed]:
    """Fold an order event into the by-id view; the feeds for the repartitioned views.

    A repeated event writes the row and its feeds again, with a removal from every
    other status: after a crash they may never have been sent (see fold_into).
    """
    by_id = views["orders"]
    previous = by_id.get(envelope.aggregate_id)
    order = fold_into(by_id, ORDERS, envelope, rewrite_repeat=True)
    if order is None:
        return [] if previous is None else _feeds_again(Order.model_validate(previous))
    row = summary(order)
    feeds = [Feed("customer", order.customer_id, json.dumps(row).encode())]
    old_status = None if previous is None else previous["status"]
    if old_status != order.status:
        if old_status is not None:
            remove = {"op": "remove", **row, "status": old_status}
            feeds.append(Feed("status", old_status, json.dumps(remove).encode()))
        feeds.append(Feed("status", str(order.status), json.dumps({"op": "add", **row}).encode()))
    return feeds


def _feeds_again(order: Order) -> list[Feed]:
    row = summary(order)
    feeds = [Feed("customer", order.customer_id, json.dumps(row).encode())]
    for status in get_args(OrderStatus):
        op = "add" if status == order.status else "remove"
        message = {"op": op, **row, "status": status}
        feeds.append(Feed("status", status, json.dumps(message).encode()))
    return feeds


def index_by_customer(raw: bytes) -> None:
    row = json.loads(raw)
    _upsert(customer_orders, f"{row['customer_id']}/{row['order_id']}", row)


def index_by_status(raw: bytes) -> None:
    message = json.loads(raw)
    op = message.pop("op")
    key = f"{message['status']}/{message['order_id']}"
    if op == "add":
        _upsert(orders_by_status, key, message)
        return
    stored = orders_by_status.get(key)
    if stored is not None and stored["version"] > message["version"]:
        orders_by_status[key] = stored  # a repeat: the changelog must hold the newer row
        return
    if stored is None:  # a repeat: its tombstone may never have reached the changelog
        orders_by_status[key] = message
    del orders_by_status[key]


def _upsert(view: Any, key: str, row: dict[str, Any]) -> None:
    """The newer of the stored and the given row; written either way, so a repeated
    message carries the row to the changelog again (see fold_into)."""
    stored = view.get(key)
    view[key] = row if stored is None or stored["version"] < row["version"] else stored


def record_step(envelope: EventEnvelope) -> None:
    """One saga step in the order's timeline; a redelivered event rewrites the same row."""
    # time, then version: one command's events share a time but not a version
    at = envelope.occurred_at.isoformat()
    key = f"{envelope.correlation_id}/{at}/{envelope.aggregate_version:09d}/{envelope.event_id}"
    order_timeline[key] = {
        "at": envelope.occurred_at.isoformat(),
        "service": SERVICE_OF.get(envelope.aggregate_type, envelope.aggregate_type),
        "event_type": envelope.event_type,
        "event_id": str(envelope.event_id),
        "aggregate": f"{envelope.aggregate_type}:{envelope.aggregate_id}",
        "version": envelope.aggregate_version,
        "caused_by": envelope.causation_id,
        "payload": envelope.payload,
    }


def timeline(order_id: str) -> list[dict[str, Any]]:
    return [row for _, row in rows_with_prefix(order_timeline, f"{order_id}/")]


def orders_of(customer_id: str) -> list[dict[str, Any]]:
    return [row for _, row in rows_with_prefix(customer_orders, f"{customer_id}/")]


def orders_in(status: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    """A page of orders in a status, in order id order, starting after `after`."""
    page: list[dict[str, Any]] = []
    start = None if after is None else f"{status}/{after}"
    for _, row in rows_with_prefix(orders_by_status, f"{status}/", after=start):
        page.append(row)
        if len(page) >= limit:
            break
    return page
