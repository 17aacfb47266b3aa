"""Order read models: by id with its indexes by customer and by status, and the timeline.

All are batched folds into partition stores (agents/folds.py), keyed by order
like every saga topic. The order fold keeps, beside each order's state, two
indexes of the orders of ITS partition, written in the same RocksDB write as the
state: `x/c/<customer>/<order>` and `x/s/<status>/<order>`, each the order's
summary. A status change deletes the old status's row in that same write, so no
crash can leave an order listed twice, and a batch folded again writes the same
rows. A customer's orders, or the orders in a status, are read from every
partition's index and merged by order id (web/partitions.py): a read asks each
owner once, and no record is written for an index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from domain.orders import ORDERS
from models.envelope import EventEnvelope
from models.orders import Order
from models.tracing import Trace, trace_id_of, trace_of
from models.upcasting import decode_event
from tables.read_models import Folded, LogRecord, Stored
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


CUSTOMER_INDEX = b"x/c/"
STATUS_INDEX = b"x/s/"


def index_rows(previous: Order | None, order: Order) -> dict[bytes, bytes | None]:
    """What one order change writes to the indexes beside the order's state."""
    row = _json(summary(order))
    rows: dict[bytes, bytes | None] = {
        _index(CUSTOMER_INDEX, order.customer_id, order): row,
        _index(STATUS_INDEX, str(order.status), order): row,
    }
    if previous is not None and previous.status != order.status:
        rows[_index(STATUS_INDEX, str(previous.status), order)] = None
    return rows


def _index(prefix: bytes, view_key: str, order: Order) -> bytes:
    return prefix + f"{view_key}/{order.order_id}".encode()


def _json(row: dict[str, Any]) -> bytes:
    return json.dumps(row).encode()


orders_read_model: StateFold[Order] = StateFold(
    "orders-projection", "orders.events", ORDERS, on_change=index_rows
)
"""Each order by id (`s/<order id>`), and the customer and status indexes of its partition."""


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
                key, step = timeline_step(envelope, trace_of(getattr(record, "headers", None)))
                folded.rows[key] = _json(step)
            except Exception as error:
                folded.failures.append((record, error))
        return folded


def timeline_step(envelope: EventEnvelope, trace: Trace = None) -> tuple[bytes, dict[str, Any]]:
    """One saga step's row, with the trace its record carried (models/tracing.py); a
    repeated event gives the same key, so it is written once."""
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
        "trace_id": trace_id_of(trace),
        "payload": envelope.payload,
    }


def _rows(store: Stored, prefix: bytes, after: bytes | None = None) -> Iterator[Any]:
    for _, raw in store.with_prefix(prefix, after=after):
        yield json.loads(raw)


def timeline(store: Stored, order_id: str) -> list[dict[str, Any]]:
    return list(_rows(store, f"{order_id}/".encode()))


def orders_of(store: Stored, customer_id: str) -> list[dict[str, Any]]:
    """The customer's orders in this partition, in order id order."""
    return list(_rows(store, CUSTOMER_INDEX + f"{customer_id}/".encode()))


def orders_in(store: Stored, status: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    """A page of this partition's orders in a status, in order id order, after `after`."""
    prefix = STATUS_INDEX + f"{status}/".encode()
    start = None if after is None else prefix + after.encode()
    return list(islice(_rows(store, prefix, after=start), limit))
