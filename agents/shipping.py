"""The shipping service: a shipment for each reserved order, cancelled with the order."""

from __future__ import annotations

from typing import Any

from agents.command_side import CommandSide
from agents.service import Service
from app.main import app
from app.topics import inputs, order_events, shipment_events
from domain.saga import shipping_inbound
from domain.shipping import SHIPMENTS

shipping_side = CommandSide(SHIPMENTS, follows=order_events, events=shipment_events)
app.service(shipping_side)  # type: ignore[arg-type]

shipping_service = Service(
    name="shipping",
    side=shipping_side,
    reacts_to={name: shipping_inbound for name in order_events.topics},
)


@app.agent(inputs(order_events), name="shipping-service")
async def run_shipping(stream: Any) -> None:
    await shipping_service.run("shipping-service", stream)
