"""Order context: the customer's order from placement to completion or cancellation."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, ValidationInfo, field_validator

from models.base import Strict
from models.ids import MAX_VERSION, AggregateId
from models.money import MAX_AMOUNT, NON_NEGATIVE_INPUT, Money, PositiveMoney

AGGREGATE_TYPE = "order"
MAX_LINES = 50
MAX_QUANTITY = 10_000

OrderStatus = Literal["pending", "paid", "reserved", "shipped", "completed", "cancelled"]
STATUSES: tuple[str, ...] = ("pending", "paid", "reserved", "shipped", "completed", "cancelled")
CANCELLABLE = ("pending", "paid", "reserved")


class OrderLine(Strict):
    sku: AggregateId
    quantity: int = Field(gt=0, le=MAX_QUANTITY)
    unit_price: PositiveMoney


class Address(Strict):
    name: str = Field(min_length=1, max_length=200)
    street: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")


def subtotal(lines: list[OrderLine]) -> Decimal:
    return sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))


# --- commands -----------------------------------------------------------------


class PlaceOrder(Strict):
    command_type: ClassVar[str] = "PlaceOrder"
    customer_id: AggregateId
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    discount: Annotated[Money, NON_NEGATIVE_INPUT] = Field(
        default=Decimal("0.00"), validate_default=True
    )
    shipping_address: Address | None = None

    @field_validator("lines")
    @classmethod
    def _distinct_skus(cls, lines: list[OrderLine]) -> list[OrderLine]:
        skus = [line.sku for line in lines]
        duplicates = sorted({s for s in skus if skus.count(s) > 1})
        if duplicates:
            raise ValueError(f"each SKU at most once per order; repeated: {', '.join(duplicates)}")
        if subtotal(lines) > MAX_AMOUNT:
            raise ValueError(f"an order's subtotal is limited to {MAX_AMOUNT}")
        return lines

    # a field validator, not a model one, so a 422 names `discount` as the field
    @field_validator("discount")
    @classmethod
    def _discount_below_subtotal(cls, discount: Decimal, info: ValidationInfo) -> Decimal:
        if discount < 0:
            raise ValueError("discount must not be negative")
        lines = info.data.get("lines")
        if lines is not None and discount >= subtotal(lines):
            raise ValueError("discount must be less than the order's subtotal")
        return discount


class CompleteOrder(Strict):
    command_type: ClassVar[str] = "CompleteOrder"


class CancelOrder(Strict):
    command_type: ClassVar[str] = "CancelOrder"
    reason: str = Field(default="customer_request", min_length=1, max_length=100)
    detail: str | None = Field(default=None, max_length=500)


class MarkPaid(Strict):
    """From the payments service: the total was captured."""

    command_type: ClassVar[str] = "MarkPaid"
    amount: Money


class MarkReserved(Strict):
    """From the inventory service: every line is reserved."""

    command_type: ClassVar[str] = "MarkReserved"


class MarkShipped(Strict):
    """From the shipping service: a shipment exists."""

    command_type: ClassVar[str] = "MarkShipped"
    shipment_id: str


OrderCommand = PlaceOrder | CompleteOrder | CancelOrder | MarkPaid | MarkReserved | MarkShipped
COMMANDS: dict[str, type[OrderCommand]] = {
    c.command_type: c
    for c in (PlaceOrder, CompleteOrder, CancelOrder, MarkPaid, MarkReserved, MarkShipped)
}


# --- events --------------------------------------------------------------------


class OrderPlaced(Strict):
    """v1: customer and lines; v2 adds `discount`; v3 adds `shipping_address`."""

    event_type: ClassVar[str] = "OrderPlaced"
    schema_version: ClassVar[int] = 3
    customer_id: str
    lines: list[OrderLine]
    discount: Money
    shipping_address: Address | None
    total: Money


class OrderPaid(Strict):
    event_type: ClassVar[str] = "OrderPaid"
    schema_version: ClassVar[int] = 1
    amount: Money


class OrderReserved(Strict):
    event_type: ClassVar[str] = "OrderReserved"
    schema_version: ClassVar[int] = 1
    shipping_address: Address | None


class OrderShipped(Strict):
    event_type: ClassVar[str] = "OrderShipped"
    schema_version: ClassVar[int] = 1
    shipment_id: str


class OrderCompleted(Strict):
    event_type: ClassVar[str] = "OrderCompleted"
    schema_version: ClassVar[int] = 1


class OrderCancelled(Strict):
    event_type: ClassVar[str] = "OrderCancelled"
    schema_version: ClassVar[int] = 1
    reason: str
    detail: str | None = None
    previous_status: str


OrderEvent = (
    OrderPlaced | OrderPaid | OrderReserved | OrderShipped | OrderCompleted | OrderCancelled
)
EVENTS: dict[str, type[OrderEvent]] = {
    e.event_type: e
    for e in (OrderPlaced, OrderPaid, OrderReserved, OrderShipped, OrderCompleted, OrderCancelled)
}


# --- state ---------------------------------------------------------------------


class Order(Strict):
    order_id: str
    status: OrderStatus | None = None
    customer_id: str = ""
    lines: list[OrderLine] = Field(default_factory=list)
    discount: Money = Decimal("0.00")
    total: Money = Decimal("0.00")
    shipping_address: Address | None = None
    shipment_id: str | None = None
    cancel_reason: str | None = None
    cancel_detail: str | None = None
    version: int = 0
    placed_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0


# --- HTTP bodies -----------------------------------------------------------------


class PlaceOrderRequest(PlaceOrder):
    """`POST /orders`: the command's fields, an optional order id and expected version."""

    order_id: AggregateId | None = None
    expected_version: int | None = Field(default=None, ge=0, le=MAX_VERSION)

    def command(self) -> PlaceOrder:
        return PlaceOrder.model_validate(self.model_dump(exclude={"order_id", "expected_version"}))


class CancelOrderRequest(Strict):
    reason: str = Field(default="customer_request", min_length=1, max_length=100)
    expected_version: int | None = Field(default=None, ge=0, le=MAX_VERSION)


class VersionOnlyRequest(Strict):
    expected_version: int | None = Field(default=None, ge=0, le=MAX_VERSION)
