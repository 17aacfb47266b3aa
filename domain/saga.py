"""The saga's choreography as pure policies: which fact leads to which command.

Each service reacts to facts (other services' events, and the answers to the
commands it sent) by deciding on its own aggregate, keyed by the order:
`*_inbound` turns a fact into that command. What the aggregate then decided
may need other services to act: `*_outbound` turns those events into commands
for them. Policies match on the typed events (models/) and build typed
commands, so a renamed field is a type error, not a silent None. Every command
id is derived from the event that caused it, so a redelivered fact yields the
same command, which its handler applies once. Who reacts to what is wired in
domain/topology.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from domain.accounts import ACCOUNTS
from domain.inventory import RESERVATIONS, STOCKS
from domain.orders import ORDERS
from domain.payments import PAYMENTS
from domain.shipping import SHIPMENTS
from models.accounts import DepositMoney, WithdrawMoney
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope
from models.inventory import (
    CancelReservation,
    CommitReservation,
    CommitStock,
    InventoryReservationFailed,
    InventoryReserved,
    NoteOrder,
    RecordLine,
    ReleaseStock,
    ReservationCommitted,
    ReservationReleased,
    ReservationStarted,
    ReserveStock,
    StartReservation,
)
from models.orders import (
    CancelOrder,
    MarkPaid,
    MarkReserved,
    MarkShipped,
    OrderCancelled,
    OrderPaid,
    OrderPlaced,
    OrderReserved,
    OrderShipped,
)
from models.payments import (
    PaymentCaptured,
    PaymentDeclined,
    PaymentRequested,
    RecordCapture,
    RecordRefund,
    RefundRequested,
    RequestPayment,
    RequestRefund,
)
from models.shipping import CancelShipment, CreateShipment, ShipmentCreated

Target = Literal["accounts", "stock"]
"""A service whose own command topic takes the saga's commands."""
Asker = Literal["payments", "reservations"]
"""A service that wants the answers to the commands it sent."""

EVENT_TYPES: Mapping[str, type[BaseModel]] = {
    name: model
    for decider in (ACCOUNTS, ORDERS, PAYMENTS, STOCKS, RESERVATIONS, SHIPMENTS)
    for name, model in decider.events.items()
}
"""Every event's payload model by event type."""


@dataclass(frozen=True)
class Fact:
    """An event as a policy sees it: the envelope (ids, aggregate, correlation) and the
    typed payload, decoded once for every policy that reads it."""

    envelope: EventEnvelope
    event: BaseModel


def fact_of(envelope: EventEnvelope) -> Fact:
    """The typed fact in an envelope (upcast already: models/upcasting.py)."""
    return Fact(envelope, EVENT_TYPES[envelope.event_type].model_validate(envelope.payload))


@dataclass(frozen=True)
class Dispatch:
    """A command for another service's aggregate, and whom it should answer."""

    target: Target
    command: CommandEnvelope
    reply: Asker | None = None


def _command(
    cause: Fact, command: BaseModel, aggregate_id: str | None = None, suffix: str = ""
) -> CommandEnvelope:
    envelope = cause.envelope
    return CommandEnvelope(
        command_id=f"{envelope.event_id}{suffix}",
        command_type=_type_of(command),
        aggregate_id=aggregate_id or envelope.aggregate_id,
        payload=command.model_dump(mode="json"),
        correlation_id=envelope.correlation_id,
        causation_id=str(envelope.event_id),
    )


def _answer(result: CommandResult, command: BaseModel) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=f"{result.command_id}:answer",
        command_type=_type_of(command),
        aggregate_id=result.correlation_id,
        payload=command.model_dump(mode="json"),
        correlation_id=result.correlation_id,
        causation_id=_cause_of(result),
    )


def _type_of(command: BaseModel) -> str:
    return str(type(command).command_type)  # type: ignore[attr-defined]


def _cause_of(result: CommandResult) -> str:
    # the answered command's own id is "<causing event id>[:suffix]"
    return result.command_id.split(":", 1)[0]


def _reason(result: CommandResult) -> str | None:
    return None if result.rejection is None else result.rejection.code


def _answers(result: CommandResult, command: type[Any]) -> bool:
    return result.command_type == command.command_type


# --- orders: the order follows what payments, inventory and shipping report ---------


def orders_inbound(fact: Fact) -> CommandEnvelope | None:
    match fact.event:
        case PaymentCaptured(amount=amount):
            return _command(fact, MarkPaid(amount=amount))
        case PaymentDeclined(reason=reason):
            return _command(fact, CancelOrder(reason="payment_declined", detail=reason))
        case InventoryReserved():
            return _command(fact, MarkReserved())
        case InventoryReservationFailed(short=short):
            detail = ", ".join(f"{sku}: {why}" for sku, why in sorted(short.items()))
            return _command(fact, CancelOrder(reason="out_of_stock", detail=detail))
        case ShipmentCreated(shipment_id=shipment_id):
            return _command(fact, MarkShipped(shipment_id=shipment_id))
    return None


# --- payments: capture when placed, refund when cancelled after capture ---------------


def payments_inbound(fact: Fact) -> CommandEnvelope | None:
    match fact.event:
        case OrderPlaced(customer_id=customer_id, total=total):
            return _command(fact, RequestPayment(customer_id=customer_id, amount=total))
        case OrderCancelled(reason=reason):
            return _command(fact, RequestRefund(reason=reason))
    return None


def payments_answer(result: CommandResult) -> CommandEnvelope | None:
    accepted = result.outcome == "accepted"
    if _answers(result, WithdrawMoney):
        return _answer(result, RecordCapture(accepted=accepted, reason=_reason(result)))
    if _answers(result, DepositMoney):
        return _answer(result, RecordRefund(accepted=accepted, reason=_reason(result)))
    return None


def payments_outbound(fact: Fact) -> list[Dispatch]:
    order_id = fact.envelope.aggregate_id
    match fact.event:
        case PaymentRequested(customer_id=customer_id, amount=amount):
            withdraw = WithdrawMoney(amount=amount, reference=f"payment:{order_id}")
            return [Dispatch("accounts", _command(fact, withdraw, customer_id), "payments")]
        case RefundRequested(customer_id=customer_id, amount=amount):
            deposit = DepositMoney(amount=amount, reference=f"refund:{order_id}")
            return [Dispatch("accounts", _command(fact, deposit, customer_id), "payments")]
    return []


# --- inventory: reserve every line once paid; release or commit with the order --------


def reservations_inbound(fact: Fact) -> CommandEnvelope | None:
    match fact.event:
        case OrderPlaced(lines=lines):
            return _command(fact, NoteOrder(lines={line.sku: line.quantity for line in lines}))
        case OrderPaid():
            return _command(fact, StartReservation())
        case OrderCancelled():
            return _command(fact, CancelReservation())
        case OrderShipped():
            return _command(fact, CommitReservation())
    return None


def reservations_answer(result: CommandResult) -> CommandEnvelope | None:
    if not _answers(result, ReserveStock):
        return None
    accepted = result.outcome == "accepted"
    line = RecordLine(sku=result.aggregate_id, accepted=accepted, reason=_reason(result))
    return _answer(result, line)


def reservations_outbound(fact: Fact) -> list[Dispatch]:
    order_id = fact.envelope.aggregate_id
    match fact.event:
        case ReservationStarted(lines=lines):
            return [
                _stock(fact, ReserveStock(order_id=order_id, quantity=quantity), sku, answer=True)
                for sku, quantity in sorted(lines.items())
            ]
        case InventoryReservationFailed(released=released) | ReservationReleased(released=released):
            return [_stock(fact, ReleaseStock(order_id=order_id), sku) for sku in sorted(released)]
        case ReservationCommitted(committed=committed):
            return [_stock(fact, CommitStock(order_id=order_id), sku) for sku in sorted(committed)]
    return []


def _stock(fact: Fact, command: BaseModel, sku: str, answer: bool = False) -> Dispatch:
    envelope = _command(fact, command, sku, f":{sku}")
    return Dispatch("stock", envelope, "reservations" if answer else None)


# --- shipping: ship what is reserved, unless the order was cancelled -------------------


def shipping_inbound(fact: Fact) -> CommandEnvelope | None:
    match fact.event:
        case OrderReserved(shipping_address=address):
            return _command(fact, CreateShipment(shipping_address=address))
        case OrderCancelled():
            return _command(fact, CancelShipment())
    return None
