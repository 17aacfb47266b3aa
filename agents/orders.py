"""Order agents: the order service (HTTP commands and the saga's reports) and its read models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agents.commands import CommandHandler
from agents.dead_letters import guarded
from agents.service import Service
from app.main import app
from app.topics import (
    inputs,
    order_commands,
    order_events,
    orders_by_customer_feed,
    orders_by_status_feed,
    payment_events,
    reservation_events,
    shipment_events,
)
from domain.orders import ORDERS
from domain.saga import orders_inbound
from models.upcasting import decode_event
from tables import orders as t

order_service = Service(
    name="orders",
    handler=CommandHandler(ORDERS, *t.order_side, events=order_events),
    commands=order_commands,
    own_events=order_events,
    reacts_to={
        name: orders_inbound
        for topic in (payment_events, reservation_events, shipment_events)
        for name in topic.topics
    },
)


@app.agent(
    inputs(order_commands, order_events, payment_events, reservation_events, shipment_events),
    name="orders-service",
)
async def run_orders(stream: Any) -> None:
    async for event in stream.events():
        await guarded("orders-service", event, order_service.process)


@app.agent(order_events, name="orders-projection")
async def project_orders(stream: Any) -> None:
    """Order by id; and each change fed, repartitioned, to the per-customer and per-status views."""
    async for event in stream.events():
        await guarded("orders-projection", event, fold_order_event)


async def fold_order_event(topic: str, raw: bytes) -> None:
    for feed in t.project(decode_event(raw)):
        target = orders_by_customer_feed if feed.view == "customer" else orders_by_status_feed
        await target.send(key=feed.key, value=feed.value)


@app.agent(orders_by_customer_feed, name="orders-by-customer")
async def index_by_customer(stream: Any) -> None:
    async for event in stream.events():
        await guarded("orders-by-customer", event, _sync(t.index_by_customer))


@app.agent(orders_by_status_feed, name="orders-by-status")
async def index_by_status(stream: Any) -> None:
    async for event in stream.events():
        await guarded("orders-by-status", event, _sync(t.index_by_status))


@app.agent(
    inputs(order_events, payment_events, reservation_events, shipment_events),
    name="orders-timeline",
)
async def record_timeline(stream: Any) -> None:
    async for event in stream.events():
        await guarded("orders-timeline", event, record_step)


async def record_step(topic: str, raw: bytes) -> None:
    t.record_step(decode_event(raw))


def _sync(fold: Callable[[bytes], None]) -> Callable[[str, bytes], Awaitable[None]]:
    async def handle(topic: str, raw: bytes) -> None:
        fold(raw)

    return handle
