"""The Order decider: the order's life cycle and what each state allows."""

from __future__ import annotations

from datetime import datetime

from domain.decider import Decider
from domain.errors import AlreadyExists, NotFound, RuleViolated
from models.orders import (
    AGGREGATE_TYPE,
    CANCELLABLE,
    COMMANDS,
    EVENTS,
    CancelOrder,
    CompleteOrder,
    MarkPaid,
    MarkReserved,
    MarkShipped,
    Order,
    OrderCancelled,
    OrderCommand,
    OrderCompleted,
    OrderEvent,
    OrderPaid,
    OrderPlaced,
    OrderReserved,
    OrderShipped,
    PlaceOrder,
    subtotal,
)


class InvalidTransition(RuleViolated):
    code = "invalid_transition"


def initial_state(order_id: str) -> Order:
    return Order(order_id=order_id)


def decide(command: OrderCommand, state: Order) -> list[OrderEvent]:
    match command:
        case PlaceOrder():
            if state.exists:
                raise AlreadyExists(f"order {state.order_id} already exists")
            return [
                OrderPlaced(
                    customer_id=command.customer_id,
                    lines=command.lines,
                    discount=command.discount,
                    shipping_address=command.shipping_address,
                    total=subtotal(command.lines) - command.discount,
                )
            ]
        case CancelOrder(reason=reason, detail=detail):
            _require(state, CANCELLABLE, "cancel")
            return [OrderCancelled(reason=reason, detail=detail, previous_status=str(state.status))]
        case CompleteOrder():
            _require(state, ("shipped",), "complete")
            return [OrderCompleted()]
        case MarkPaid(amount=amount):
            _require(state, ("pending",), "mark paid")
            return [OrderPaid(amount=amount)]
        case MarkReserved():
            _require(state, ("paid",), "mark reserved")
            return [OrderReserved(shipping_address=state.shipping_address)]
        case MarkShipped(shipment_id=shipment_id):
            _require(state, ("reserved",), "ship")
            return [OrderShipped(shipment_id=shipment_id)]
    raise TypeError(f"not an order command: {command!r}")


def evolve(state: Order, event: OrderEvent, at: datetime | None = None) -> Order:
    change: dict[str, object] = {"version": state.version + 1, "updated_at": at}
    match event:
        case OrderPlaced():
            change |= {
                "status": "pending",
                "customer_id": event.customer_id,
                "lines": event.lines,
                "discount": event.discount,
                "total": event.total,
                "shipping_address": event.shipping_address,
                "placed_at": at,
            }
        case OrderPaid():
            change["status"] = "paid"
        case OrderReserved():
            change["status"] = "reserved"
        case OrderShipped(shipment_id=shipment_id):
            change |= {"status": "shipped", "shipment_id": shipment_id}
        case OrderCompleted():
            change["status"] = "completed"
        case OrderCancelled(reason=reason, detail=detail):
            change |= {"status": "cancelled", "cancel_reason": reason, "cancel_detail": detail}
        case _:
            raise TypeError(f"not an order event: {event!r}")
    return state.evolved(**change)


def _require(state: Order, allowed: tuple[str, ...], action: str) -> None:
    if not state.exists:
        raise NotFound(f"order {state.order_id} does not exist", order_id=state.order_id)
    if state.status not in allowed:
        raise InvalidTransition(
            f"cannot {action} an order that is {state.status}",
            status=state.status,
            allowed=list(allowed),
        )


ORDERS: Decider[OrderCommand, OrderEvent, Order] = Decider(
    aggregate_type=AGGREGATE_TYPE,
    state_type=Order,
    commands=COMMANDS,
    events=EVENTS,
    initial_state=initial_state,
    decide=decide,
    evolve=evolve,
)
