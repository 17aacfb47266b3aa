"""Earlier versions of OrderPlaced, as they were written, and the upcasters from them.

v1 had the customer, the lines and the total; v2 added `discount`; v3 (the
current `models.orders.OrderPlaced`) added `shipping_address`. These models are
never used to write; they document the old contracts (`models.contracts`
records their JSON Schemas) and let tests and upcasters validate old payloads.
The upcasters bring an old payload up one version; `models.contexts` lists them
with the orders context, and `models.upcasting` chains them on read.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from models.base import Strict
from models.money import Money
from models.orders import OrderLine


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
"""Every earlier version of an orders event type that still has a model."""


def order_placed_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 added `discount`; v1 orders had none."""
    return {**payload, "discount": "0.00"}


def order_placed_v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
    """v3 added `shipping_address`; earlier orders did not say."""
    return {**payload, "shipping_address": None}
