"""Payments context: one payment process per order, paid from the customer's account."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Literal

from models.base import Strict
from models.money import Money

AGGREGATE_TYPE = "payment"

PaymentStatus = Literal[
    "none", "requested", "captured", "declined", "refund_requested", "refunded", "refund_failed"
]


# --- commands (derived from other services' events and the account's answers) ---


class RequestPayment(Strict):
    command_type: ClassVar[str] = "RequestPayment"
    customer_id: str
    amount: Money


class RecordCapture(Strict):
    command_type: ClassVar[str] = "RecordCapture"
    accepted: bool
    reason: str | None = None


class RequestRefund(Strict):
    command_type: ClassVar[str] = "RequestRefund"
    reason: str


class RecordRefund(Strict):
    command_type: ClassVar[str] = "RecordRefund"
    accepted: bool
    reason: str | None = None


PaymentCommand = RequestPayment | RecordCapture | RequestRefund | RecordRefund
COMMANDS: dict[str, type[PaymentCommand]] = {
    c.command_type: c for c in (RequestPayment, RecordCapture, RequestRefund, RecordRefund)
}


# --- events ------------------------------------------------------------------------


class PaymentRequested(Strict):
    event_type: ClassVar[str] = "PaymentRequested"
    schema_version: ClassVar[int] = 1
    customer_id: str
    amount: Money


class PaymentCaptured(Strict):
    event_type: ClassVar[str] = "PaymentCaptured"
    schema_version: ClassVar[int] = 1
    customer_id: str
    amount: Money


class PaymentDeclined(Strict):
    event_type: ClassVar[str] = "PaymentDeclined"
    schema_version: ClassVar[int] = 1
    customer_id: str
    amount: Money
    reason: str


class CancellationNoted(Strict):
    """The order was cancelled while the capture was in flight: refund once captured."""

    event_type: ClassVar[str] = "CancellationNoted"
    schema_version: ClassVar[int] = 1
    reason: str


class RefundRequested(Strict):
    event_type: ClassVar[str] = "RefundRequested"
    schema_version: ClassVar[int] = 1
    customer_id: str
    amount: Money
    reason: str


class PaymentRefunded(Strict):
    event_type: ClassVar[str] = "PaymentRefunded"
    schema_version: ClassVar[int] = 1
    customer_id: str
    amount: Money


class RefundFailed(Strict):
    """The account refused the refund's deposit (e.g. its balance limit): money is owed
    to the customer and an operator must settle it; the payment does not pretend."""

    event_type: ClassVar[str] = "RefundFailed"
    schema_version: ClassVar[int] = 1
    customer_id: str
    amount: Money
    reason: str


PaymentEvent = (
    PaymentRequested
    | PaymentCaptured
    | PaymentDeclined
    | CancellationNoted
    | RefundRequested
    | PaymentRefunded
    | RefundFailed
)
EVENTS: dict[str, type[PaymentEvent]] = {
    e.event_type: e
    for e in (
        PaymentRequested,
        PaymentCaptured,
        PaymentDeclined,
        CancellationNoted,
        RefundRequested,
        PaymentRefunded,
        RefundFailed,
    )
}


class Payment(Strict):
    order_id: str
    status: PaymentStatus = "none"
    customer_id: str = ""
    amount: Money = Decimal("0.00")
    cancel_reason: str | None = None
    version: int = 0
