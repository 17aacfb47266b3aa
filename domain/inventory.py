"""Inventory deciders: stock per SKU (never oversold), and each order's reservation.

A multi-line order reserves across SKUs, so across partitions: the order's
Reservation fans out one ReserveStock per line, records each answer, and
when the last one is in, either reports the order reserved or releases the
lines that succeeded and reports it short.
"""

from __future__ import annotations

from datetime import datetime

from domain.decider import Decider
from domain.errors import NotFound, RuleViolated
from models.inventory import (
    RESERVATION,
    RESERVATION_COMMANDS,
    RESERVATION_EVENTS,
    STOCK,
    STOCK_COMMANDS,
    STOCK_EVENTS,
    AddStock,
    CancelReservation,
    CommitReservation,
    CommitStock,
    InventoryReservationFailed,
    InventoryReserved,
    LineRejected,
    LineReserved,
    NoteOrder,
    OrderNoted,
    RecordLine,
    ReleaseStock,
    Reservation,
    ReservationCancelled,
    ReservationCommand,
    ReservationCommitted,
    ReservationEvent,
    ReservationReleased,
    ReservationStarted,
    ReserveStock,
    StartReservation,
    Stock,
    StockAdded,
    StockCommand,
    StockCommitted,
    StockEvent,
    StockReleased,
    StockReserved,
)


class InsufficientStock(RuleViolated):
    code = "insufficient_stock"


# --- Stock --------------------------------------------------------------------------


def decide_stock(command: StockCommand, state: Stock) -> list[StockEvent]:
    match command:
        case AddStock(quantity=quantity):
            return [StockAdded(quantity=quantity)]
        case ReserveStock(order_id=order_id, quantity=quantity):
            if order_id in state.reservations:
                return []
            if state.version == 0:
                raise NotFound(f"SKU {state.sku} is not stocked", sku=state.sku)
            if quantity > state.available:
                raise InsufficientStock(
                    f"SKU {state.sku}: {quantity} requested, {state.available} available",
                    sku=state.sku,
                    requested=quantity,
                    available=state.available,
                )
            return [StockReserved(order_id=order_id, quantity=quantity)]
        case ReleaseStock(order_id=order_id):
            held = state.reservations.get(order_id)
            return [] if held is None else [StockReleased(order_id=order_id, quantity=held)]
        case CommitStock(order_id=order_id):
            held = state.reservations.get(order_id)
            return [] if held is None else [StockCommitted(order_id=order_id, quantity=held)]
    raise TypeError(f"not a stock command: {command!r}")


def evolve_stock(state: Stock, event: StockEvent, at: datetime | None = None) -> Stock:
    reservations = dict(state.reservations)
    on_hand, reserved = state.on_hand, state.reserved
    match event:
        case StockAdded(quantity=quantity):
            on_hand += quantity
        case StockReserved(order_id=order_id, quantity=quantity):
            reservations[order_id] = quantity
            reserved += quantity
        case StockReleased(order_id=order_id, quantity=quantity):
            reservations.pop(order_id, None)
            reserved -= quantity
        case StockCommitted(order_id=order_id, quantity=quantity):
            reservations.pop(order_id, None)
            reserved -= quantity
            on_hand -= quantity
        case _:
            raise TypeError(f"not a stock event: {event!r}")
    return state.evolved(
        on_hand=on_hand, reserved=reserved, reservations=reservations, version=state.version + 1
    )


STOCKS: Decider[StockCommand, StockEvent, Stock] = Decider(
    aggregate_type=STOCK,
    state_type=Stock,
    commands=STOCK_COMMANDS,
    events=STOCK_EVENTS,
    initial_state=lambda sku: Stock(sku=sku),
    decide=decide_stock,
    evolve=evolve_stock,
)


# --- Reservation (per order) -------------------------------------------------------------


def decide_reservation(command: ReservationCommand, state: Reservation) -> list[ReservationEvent]:
    match command:
        case NoteOrder(lines=lines):
            return [OrderNoted(lines=lines)] if state.status == "none" else []
        case StartReservation():
            if state.status != "noted" or state.cancelled:
                return []
            return [ReservationStarted(lines=state.lines)]
        case RecordLine(sku=sku, accepted=accepted, reason=reason):
            if state.status != "reserving" or sku not in state.lines:
                return []
            if sku in state.reserved or sku in state.rejected:
                return []
            quantity = state.lines[sku]
            line: ReservationEvent = (
                LineReserved(sku=sku, quantity=quantity)
                if accepted
                else LineRejected(sku=sku, quantity=quantity, reason=reason or "rejected")
            )
            after = evolve_reservation(state, line)
            return [line, *_conclude(after)]
        case CancelReservation():
            if state.cancelled or state.status in ("released", "committed", "failed"):
                return []
            if state.status == "reserved":
                return [ReservationCancelled(), ReservationReleased(released=state.reserved)]
            return [ReservationCancelled()]
        case CommitReservation():
            if state.status != "reserved":
                return []
            return [ReservationCommitted(committed=state.reserved)]
    raise TypeError(f"not a reservation command: {command!r}")


def _conclude(state: Reservation) -> list[ReservationEvent]:
    """Once every line has answered: reserved, or short (releasing what was reserved)."""
    if len(state.reserved) + len(state.rejected) < len(state.lines):
        return []
    if state.cancelled:
        return [ReservationReleased(released=state.reserved)]
    if state.rejected:
        return [InventoryReservationFailed(short=state.rejected, released=state.reserved)]
    return [InventoryReserved(lines=state.reserved)]


def evolve_reservation(
    state: Reservation, event: ReservationEvent, at: datetime | None = None
) -> Reservation:
    change: dict[str, object]
    match event:
        case OrderNoted(lines=lines):
            change = {"status": "noted", "lines": lines}
        case ReservationStarted():
            change = {"status": "reserving"}
        case LineReserved(sku=sku, quantity=quantity):
            change = {"reserved": {**state.reserved, sku: quantity}}
        case LineRejected(sku=sku, reason=reason):
            change = {"rejected": {**state.rejected, sku: reason}}
        case InventoryReserved():
            change = {"status": "reserved"}
        case InventoryReservationFailed():
            change = {"status": "failed"}
        case ReservationCancelled():
            change = {"cancelled": True}
        case ReservationReleased():
            change = {"status": "released"}
        case ReservationCommitted():
            change = {"status": "committed"}
        case _:
            raise TypeError(f"not a reservation event: {event!r}")
    return state.evolved(**change, version=state.version + 1)


RESERVATIONS: Decider[ReservationCommand, ReservationEvent, Reservation] = Decider(
    aggregate_type=RESERVATION,
    state_type=Reservation,
    commands=RESERVATION_COMMANDS,
    events=RESERVATION_EVENTS,
    initial_state=lambda order_id: Reservation(order_id=order_id),
    decide=decide_reservation,
    evolve=evolve_reservation,
)
