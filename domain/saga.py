"""The saga's choreography as pure policies: which fact leads to which command.

Each service reacts to facts (other services' events, and the answers to the
commands it sent) by deciding on its own aggregate, keyed by the order:
`*_inbound` turns a fact into that command. What the aggregate then decided
may need other services to act: `*_outbound` turns those events into commands
for them. Every command id is derived from the event that caused it, so a
redelivered fact yields the same command, which its handler applies once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from models.envelope import CommandEnvelope, CommandResult, EventEnvelope

Target = Literal["accounts", "inventory"]


@dataclass(frozen=True)
class Dispatch:
    """A command for another service's aggregate, and whom it should answer."""

    target: Target
    command: CommandEnvelope
    reply: Literal["payments", "reservations"] | None = None


def _command(
    cause: EventEnvelope,
    command_type: str,
    payload: dict[str, Any],
    aggregate_id: str | None = None,
    suffix: str = "",
) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=f"{cause.event_id}{suffix}",
        command_type=command_type,
        aggregate_id=aggregate_id or cause.aggregate_id,
        payload=payload,
        correlation_id=cause.correlation_id,
        causation_id=str(cause.event_id),
    )


def _answer(result: CommandResult, command_type: str, payload: dict[str, Any]) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=f"{result.command_id}:answer",
        command_type=command_type,
        aggregate_id=result.correlation_id,
        payload=payload,
        correlation_id=result.correlation_id,
        causation_id=_cause_of(result),
    )


def _cause_of(result: CommandResult) -> str:
    # the answered command's own id is "<causing event id>[:suffix]"
    return result.command_id.split(":", 1)[0]


def _reason(result: CommandResult) -> str | None:
    return None if result.rejection is None else result.rejection.code


# --- orders: the order follows what payments, inventory and shipping report ---------


def orders_inbound(event: EventEnvelope) -> CommandEnvelope | None:
    payload = event.payload
    match event.event_type:
        case "PaymentCaptured":
            return _command(event, "MarkPaid", {"amount": payload["amount"]})
        case "PaymentDeclined":
            return _command(
                event, "CancelOrder", {"reason": "payment_declined", "detail": payload["reason"]}
            )
        case "InventoryReserved":
            return _command(event, "MarkReserved", {})
        case "InventoryReservationFailed":
            short = ", ".join(f"{sku}: {why}" for sku, why in sorted(payload["short"].items()))
            return _command(event, "CancelOrder", {"reason": "out_of_stock", "detail": short})
        case "ShipmentCreated":
            return _command(event, "MarkShipped", {"shipment_id": payload["shipment_id"]})
    return None


# --- payments: capture when placed, refund when cancelled after capture ---------------


def payments_inbound(event: EventEnvelope) -> CommandEnvelope | None:
    payload = event.payload
    match event.event_type:
        case "OrderPlaced":
            return _command(
                event,
                "RequestPayment",
                {"customer_id": payload["customer_id"], "amount": payload["total"]},
            )
        case "OrderCancelled":
            return _command(event, "RequestRefund", {"reason": payload["reason"]})
    return None


def payments_answer(result: CommandResult) -> CommandEnvelope | None:
    accepted = result.outcome == "accepted"
    match result.command_type:
        case "WithdrawMoney":
            payload = {"accepted": accepted, "reason": _reason(result)}
            return _answer(result, "RecordCapture", payload)
        case "DepositMoney":
            return _answer(
                result, "RecordRefund", {"accepted": accepted, "reason": _reason(result)}
            )
    return None


def payments_outbound(event: EventEnvelope) -> list[Dispatch]:
    payload = event.payload
    order_id = event.aggregate_id
    match event.event_type:
        case "PaymentRequested":
            withdraw = {"amount": payload["amount"], "reference": f"payment:{order_id}"}
            command = _command(event, "WithdrawMoney", withdraw, payload["customer_id"])
            return [Dispatch("accounts", command, reply="payments")]
        case "RefundRequested":
            deposit = {"amount": payload["amount"], "reference": f"refund:{order_id}"}
            command = _command(event, "DepositMoney", deposit, payload["customer_id"])
            return [Dispatch("accounts", command, reply="payments")]
    return []


# --- inventory: reserve every line once paid; release or commit with the order --------


def reservations_inbound(event: EventEnvelope) -> CommandEnvelope | None:
    match event.event_type:
        case "OrderPlaced":
            lines = {line["sku"]: line["quantity"] for line in event.payload["lines"]}
            return _command(event, "NoteOrder", {"lines": lines})
        case "OrderPaid":
            return _command(event, "StartReservation", {})
        case "OrderCancelled":
            return _command(event, "CancelReservation", {})
        case "OrderShipped":
            return _command(event, "CommitReservation", {})
    return None


def reservations_answer(result: CommandResult) -> CommandEnvelope | None:
    if result.command_type != "ReserveStock":
        return None
    payload = {
        "sku": result.aggregate_id,
        "accepted": result.outcome == "accepted",
        "reason": _reason(result),
    }
    return _answer(result, "RecordLine", payload)


def reservations_outbound(event: EventEnvelope) -> list[Dispatch]:
    payload = event.payload
    match event.event_type:
        case "ReservationStarted":
            return [
                _stock(event, "ReserveStock", sku, {"quantity": quantity}, answer=True)
                for sku, quantity in sorted(payload["lines"].items())
            ]
        case "InventoryReservationFailed" | "ReservationReleased":
            return [_stock(event, "ReleaseStock", sku) for sku in sorted(payload["released"])]
        case "ReservationCommitted":
            return [_stock(event, "CommitStock", sku) for sku in sorted(payload["committed"])]
    return []


def _stock(
    event: EventEnvelope,
    command_type: str,
    sku: str,
    extra: dict[str, Any] | None = None,
    answer: bool = False,
) -> Dispatch:
    payload = {"order_id": event.aggregate_id, **(extra or {})}
    command = _command(event, command_type, payload, sku, f":{sku}")
    return Dispatch("inventory", command, reply="reservations" if answer else None)


# --- shipping: ship what is reserved, unless the order was cancelled -------------------


def shipping_inbound(event: EventEnvelope) -> CommandEnvelope | None:
    match event.event_type:
        case "OrderReserved":
            return _command(
                event, "CreateShipment", {"shipping_address": event.payload["shipping_address"]}
            )
        case "OrderCancelled":
            return _command(event, "CancelShipment", {})
    return None
