"""Earlier versions of OrderPlaced, as they were written: the shapes upcasters start from.

v1 had the customer, the lines and the total; v2 added `discount`; v3 (the
current `models.orders.OrderPlaced`) added `shipping_address`. These models are
never used to write; they document the old contracts (`models.contracts`
records their JSON Schemas) and let tests and upcasters validate old payloads.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from models.money import Money
from models.orders import OrderLine, Strict


class OrderPlacedV1(Strict):
    """OrderPlaced v1: customer, lines and total."""

    model_config = ConfigDict(title="OrderPlaced")
    event_type: ClassVar[str] = "OrderPlaced"
    schema_version: ClassVar[int] = 1
    customer_id: str
    lines: list[OrderLine]
    total: Money


class OrderPlacedV2(Strict):
    """OrderPlaced v2: v1 and the order's `discount`."""

    model_config = ConfigDict(title="OrderPlaced")
    event_type: ClassVar[str] = "OrderPlaced"
    schema_version: ClassVar[int] = 2
    customer_id: str
    lines: list[OrderLine]
    discount: Money
    total: Money


HISTORICAL_EVENTS: tuple[type[BaseModel], ...] = (OrderPlacedV1, OrderPlacedV2)
"""Every earlier version of an event type that still has a model."""
