"""The Payment decider: capture an order's total, and refund it if the order is cancelled.

Commands come from facts elsewhere (an order placed or cancelled, the
account's answer), so every rule is idempotent: a repeated fact decides nothing.
"""

from __future__ import annotations

from datetime import datetime

from domain.decider import Decider
from models.payments import (
    AGGREGATE_TYPE,
    COMMANDS,
    EVENTS,
    CancellationNoted,
    Payment,
    PaymentCaptured,
    PaymentCommand,
    PaymentDeclined,
    PaymentEvent,
    PaymentRefunded,
    PaymentRequested,
    RecordCapture,
    RecordRefund,
    RefundFailed,
    RefundRequested,
    RequestPayment,
    RequestRefund,
)


def initial_state(order_id: str) -> Payment:
    return Payment(order_id=order_id)


def decide(command: PaymentCommand, state: Payment) -> list[PaymentEvent]:
    match command:
        case RequestPayment(customer_id=customer_id, amount=amount):
            if state.status != "none":
                return []
            return [PaymentRequested(customer_id=customer_id, amount=amount)]
        case RecordCapture(accepted=accepted, reason=reason):
            if state.status != "requested":
                return []
            if not accepted:
                return [
                    PaymentDeclined(
                        customer_id=state.customer_id,
                        amount=state.amount,
                        reason=reason or "declined",
                    )
                ]
            captured: list[PaymentEvent] = [
                PaymentCaptured(customer_id=state.customer_id, amount=state.amount)
            ]
            if state.cancel_reason is not None:
                captured.append(_refund(state, state.cancel_reason))
            return captured
        case RequestRefund(reason=reason):
            if state.status == "captured":
                return [_refund(state, reason)]
            if state.status == "requested" and state.cancel_reason is None:
                return [CancellationNoted(reason=reason)]
            return []
        case RecordRefund(accepted=accepted, reason=reason):
            if state.status != "refund_requested":
                return []
            if not accepted:
                return [
                    RefundFailed(
                        customer_id=state.customer_id,
                        amount=state.amount,
                        reason=reason or "refused",
                    )
                ]
            return [PaymentRefunded(customer_id=state.customer_id, amount=state.amount)]
    raise TypeError(f"not a payment command: {command!r}")


def _refund(state: Payment, reason: str) -> RefundRequested:
    return RefundRequested(customer_id=state.customer_id, amount=state.amount, reason=reason)


def evolve(state: Payment, event: PaymentEvent, at: datetime | None = None) -> Payment:
    version = state.version + 1
    match event:
        case PaymentRequested(customer_id=customer_id, amount=amount):
            change: dict[str, object] = {
                "status": "requested",
                "customer_id": customer_id,
                "amount": amount,
            }
        case PaymentCaptured():
            change = {"status": "captured"}
        case PaymentDeclined():
            change = {"status": "declined"}
        case CancellationNoted(reason=reason):
            change = {"cancel_reason": reason}
        case RefundRequested():
            change = {"status": "refund_requested"}
        case PaymentRefunded():
            change = {"status": "refunded"}
        case RefundFailed():
            change = {"status": "refund_failed"}
        case _:
            raise TypeError(f"not a payment event: {event!r}")
    return state.evolved(**change, version=version)


PAYMENTS: Decider[PaymentCommand, PaymentEvent, Payment] = Decider(
    aggregate_type=AGGREGATE_TYPE,
    state_type=Payment,
    commands=COMMANDS,
    events=EVENTS,
    initial_state=initial_state,
    decide=decide,
    evolve=evolve,
)
