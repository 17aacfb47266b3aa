"""New orders wait while the saga carries its bound of orders on this worker."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from agents.open_orders import OpenOrders, SagaBusy
from models.envelope import EventEnvelope, utc_now


def event(event_type: str, order_id: str, version: int = 1) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        event_type=event_type,
        schema_version=1,
        aggregate_type="order",
        aggregate_id=order_id,
        aggregate_version=version,
        occurred_at=utc_now(),
        correlation_id=order_id,
        causation_id="test",
        payload={},
    )


def test_orders_count_from_placed_until_shipped_or_cancelled() -> None:
    open_orders = OpenOrders(limit=2)
    open_orders.appended(0, [event("OrderPlaced", "o-1"), event("OrderPlaced", "o-2")])
    with pytest.raises(SagaBusy, match="2 orders under way"):
        open_orders.check()
    open_orders.appended(0, [event("OrderPaid", "o-1", 2)])
    assert open_orders.count() == 2  # a step of the saga: still under way
    open_orders.appended(0, [event("OrderShipped", "o-1", 4)])
    open_orders.check()  # room again
    open_orders.appended(3, [event("OrderPlaced", "o-3"), event("OrderCancelled", "o-2", 2)])
    assert open_orders.count() == 2


def test_a_partition_that_leaves_takes_its_orders_with_it() -> None:
    open_orders = OpenOrders(limit=1)
    open_orders.appended(5, [event("OrderPlaced", "o-1")])
    with pytest.raises(SagaBusy):
        open_orders.check()
    open_orders.released(5)
    assert open_orders.count() == 0
    open_orders.check()


def test_an_order_placed_before_the_count_began_ends_without_going_negative() -> None:
    open_orders = OpenOrders(limit=1)
    open_orders.appended(2, [event("OrderShipped", "o-old", 4)])
    assert open_orders.count() == 0


def test_each_order_counted_is_timed_from_placed_to_its_end() -> None:
    ended: list[tuple[str, float]] = []
    open_orders = OpenOrders(limit=10, finished=lambda outcome, s: ended.append((outcome, s)))
    placed = event("OrderPlaced", "o-1")
    shipped = event("OrderShipped", "o-1", 4).model_copy(
        update={"occurred_at": placed.occurred_at + timedelta(seconds=2.5)}
    )
    open_orders.appended(0, [placed, event("OrderPlaced", "o-2")])
    open_orders.appended(0, [shipped])
    open_orders.appended(0, [event("OrderCancelled", "o-2", 2)])
    open_orders.appended(0, [event("OrderCancelled", "o-9", 2)])  # placed before: not timed
    assert ended[0] == ("shipped", 2.5)
    assert [outcome for outcome, _ in ended] == ["shipped", "cancelled"]
