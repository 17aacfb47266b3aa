"""Shipping context: one shipment per order, created once its stock is reserved."""

from __future__ import annotations

from typing import ClassVar, Literal

from models.base import Strict
from models.orders import Address

AGGREGATE_TYPE = "shipment"

ShipmentStatus = Literal["none", "created", "cancelled"]


class CreateShipment(Strict):
    command_type: ClassVar[str] = "CreateShipment"
    shipping_address: Address | None


class CancelShipment(Strict):
    command_type: ClassVar[str] = "CancelShipment"


ShipmentCommand = CreateShipment | CancelShipment
COMMANDS: dict[str, type[ShipmentCommand]] = {
    c.command_type: c for c in (CreateShipment, CancelShipment)
}


class ShipmentCreated(Strict):
    event_type: ClassVar[str] = "ShipmentCreated"
    schema_version: ClassVar[int] = 1
    shipment_id: str
    shipping_address: Address | None


class ShipmentCancelled(Strict):
    event_type: ClassVar[str] = "ShipmentCancelled"
    schema_version: ClassVar[int] = 1
    shipment_id: str | None


ShipmentEvent = ShipmentCreated | ShipmentCancelled
EVENTS: dict[str, type[ShipmentEvent]] = {
    e.event_type: e for e in (ShipmentCreated, ShipmentCancelled)
}


class Shipment(Strict):
    order_id: str
    status: ShipmentStatus = "none"
    shipment_id: str | None = None
    version: int = 0
