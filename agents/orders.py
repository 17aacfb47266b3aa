"""Order agents: the order service (HTTP commands and the saga's reports) and its read models."""

from __future__ import annotations

from typing import Any

from agents.command_side import CommandSide
from agents.folds import FoldRunner
from agents.service import Service
from app.main import app
from app.topics import (
    inputs,
    order_commands,
    order_events,
    payment_events,
    reservation_events,
    shipment_events,
)
from domain.orders import ORDERS
from domain.saga import orders_inbound
from tables import orders as t
from tables.read_models import BatchFold

order_side = CommandSide(ORDERS, follows=order_commands, events=order_events)
app.service(order_side)  # type: ignore[arg-type]

order_service = Service(
    name="orders",
    side=order_side,
    commands=order_commands,
    reacts_to={
        name: orders_inbound
        for topic in (payment_events, reservation_events, shipment_events)
        for name in topic.topics
    },
)


@app.agent(
    inputs(order_commands, payment_events, reservation_events, shipment_events),
    name="orders-service",
)
async def run_orders(stream: Any) -> None:
    await order_service.run("orders-service", stream)


def _folded(fold: BatchFold) -> FoldRunner:
    runner = FoldRunner(fold, follows=order_commands)
    app.service(runner)  # type: ignore[arg-type]
    return runner


# the read models, each a batched fold where the orders' commands are decided
orders_projection = _folded(t.orders_read_model)
orders_by_customer = _folded(t.customer_view)
orders_by_status = _folded(t.status_view)
orders_timeline = _folded(t.Timeline())
