"""The Shipment decider: one shipment per reserved order, cancelled if the order is."""

from __future__ import annotations

import uuid
from datetime import datetime

from domain.decider import Decider
from models.shipping import (
    AGGREGATE_TYPE,
    COMMANDS,
    EVENTS,
    CancelShipment,
    CreateShipment,
    Shipment,
    ShipmentCancelled,
    ShipmentCommand,
    ShipmentCreated,
    ShipmentEvent,
)


def shipment_id_for(order_id: str) -> str:
    """Deterministic, so a re-run decision names the same shipment."""
    return "shp-" + uuid.uuid5(uuid.NAMESPACE_URL, f"shop:shipment:{order_id}").hex[:12]


def decide(command: ShipmentCommand, state: Shipment) -> list[ShipmentEvent]:
    match command:
        case CreateShipment(shipping_address=address):
            if state.status != "none":
                return []
            return [
                ShipmentCreated(
                    shipment_id=shipment_id_for(state.order_id), shipping_address=address
                )
            ]
        case CancelShipment():
            if state.status != "created":
                return []
            return [ShipmentCancelled(shipment_id=state.shipment_id)]
    raise TypeError(f"not a shipment command: {command!r}")


def evolve(state: Shipment, event: ShipmentEvent, at: datetime | None = None) -> Shipment:
    match event:
        case ShipmentCreated(shipment_id=shipment_id):
            change: dict[str, object] = {"status": "created", "shipment_id": shipment_id}
        case ShipmentCancelled():
            change = {"status": "cancelled"}
        case _:
            raise TypeError(f"not a shipment event: {event!r}")
    return state.evolved(**change, version=state.version + 1)


SHIPMENTS: Decider[ShipmentCommand, ShipmentEvent, Shipment] = Decider(
    aggregate_type=AGGREGATE_TYPE,
    state_type=Shipment,
    commands=COMMANDS,
    events=EVENTS,
    initial_state=lambda order_id: Shipment(order_id=order_id),
    decide=decide,
    evolve=evolve,
)
