"""The shipping service: a shipment for each reserved order, cancelled with the order."""

from __future__ import annotations

from typing import Any

from agents.commands import CommandHandler
from agents.dead_letters import guarded
from agents.service import Service
from app.main import app
from app.topics import inputs, order_events, shipment_events
from domain.saga import shipping_inbound
from domain.shipping import SHIPMENTS
from tables.aggregates import aggregate_tables

shipping_service = Service(
    name="shipping",
    handler=CommandHandler(SHIPMENTS, *aggregate_tables("shipment"), events=shipment_events),
    reacts_to={name: shipping_inbound for name in order_events.topics},
)


@app.agent(inputs(order_events), name="shipping-service")
async def run_shipping(stream: Any) -> None:
    async for event in stream.events():
        await guarded("shipping-service", event, shipping_service.process)
