"""Inventory context: stock per SKU, and one reservation process per order."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from models.base import Strict
from models.ids import MAX_VERSION

STOCK = "stock"
RESERVATION = "reservation"
MAX_STOCK_ADD = 1_000_000


# --- Stock (per SKU) -------------------------------------------------------------


class AddStock(Strict):
    command_type: ClassVar[str] = "AddStock"
    quantity: int = Field(gt=0, le=MAX_STOCK_ADD)


class ReserveStock(Strict):
    command_type: ClassVar[str] = "ReserveStock"
    order_id: str
    quantity: int = Field(gt=0)


class ReleaseStock(Strict):
    command_type: ClassVar[str] = "ReleaseStock"
    order_id: str


class CommitStock(Strict):
    command_type: ClassVar[str] = "CommitStock"
    order_id: str


StockCommand = AddStock | ReserveStock | ReleaseStock | CommitStock
STOCK_COMMANDS: dict[str, type[StockCommand]] = {
    c.command_type: c for c in (AddStock, ReserveStock, ReleaseStock, CommitStock)
}


class StockAdded(Strict):
    event_type: ClassVar[str] = "StockAdded"
    schema_version: ClassVar[int] = 1
    quantity: int


class StockReserved(Strict):
    event_type: ClassVar[str] = "StockReserved"
    schema_version: ClassVar[int] = 1
    order_id: str
    quantity: int


class StockReleased(Strict):
    event_type: ClassVar[str] = "StockReleased"
    schema_version: ClassVar[int] = 1
    order_id: str
    quantity: int


class StockCommitted(Strict):
    """Reserved units left the warehouse with a shipment."""

    event_type: ClassVar[str] = "StockCommitted"
    schema_version: ClassVar[int] = 1
    order_id: str
    quantity: int


StockEvent = StockAdded | StockReserved | StockReleased | StockCommitted
STOCK_EVENTS: dict[str, type[StockEvent]] = {
    e.event_type: e for e in (StockAdded, StockReserved, StockReleased, StockCommitted)
}


class Stock(Strict):
    sku: str
    on_hand: int = 0
    reserved: int = 0
    reservations: dict[str, int] = Field(default_factory=dict)
    """order id -> units held for it."""
    version: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class AddStockRequest(Strict):
    quantity: int = Field(gt=0, le=MAX_STOCK_ADD)
    expected_version: int | None = Field(default=None, ge=0, le=MAX_VERSION)


# --- Reservation (per order) --------------------------------------------------------

ReservationStatus = Literal[
    "none", "noted", "reserving", "reserved", "failed", "released", "committed"
]


class NoteOrder(Strict):
    command_type: ClassVar[str] = "NoteOrder"
    lines: dict[str, int]


class StartReservation(Strict):
    command_type: ClassVar[str] = "StartReservation"


class RecordLine(Strict):
    command_type: ClassVar[str] = "RecordLine"
    sku: str
    accepted: bool
    reason: str | None = None


class CancelReservation(Strict):
    command_type: ClassVar[str] = "CancelReservation"


class CommitReservation(Strict):
    command_type: ClassVar[str] = "CommitReservation"


ReservationCommand = (
    NoteOrder | StartReservation | RecordLine | CancelReservation | CommitReservation
)
RESERVATION_COMMANDS: dict[str, type[ReservationCommand]] = {
    c.command_type: c
    for c in (NoteOrder, StartReservation, RecordLine, CancelReservation, CommitReservation)
}


class OrderNoted(Strict):
    event_type: ClassVar[str] = "OrderNoted"
    schema_version: ClassVar[int] = 1
    lines: dict[str, int]


class ReservationStarted(Strict):
    event_type: ClassVar[str] = "ReservationStarted"
    schema_version: ClassVar[int] = 1
    lines: dict[str, int]


class LineReserved(Strict):
    event_type: ClassVar[str] = "LineReserved"
    schema_version: ClassVar[int] = 1
    sku: str
    quantity: int


class LineRejected(Strict):
    event_type: ClassVar[str] = "LineRejected"
    schema_version: ClassVar[int] = 1
    sku: str
    quantity: int
    reason: str


class InventoryReserved(Strict):
    event_type: ClassVar[str] = "InventoryReserved"
    schema_version: ClassVar[int] = 1
    lines: dict[str, int]


class InventoryReservationFailed(Strict):
    """Some line could not be reserved; the reserved ones are released."""

    event_type: ClassVar[str] = "InventoryReservationFailed"
    schema_version: ClassVar[int] = 1
    short: dict[str, str]
    """sku -> why it could not be reserved."""
    released: dict[str, int]


class ReservationCancelled(Strict):
    event_type: ClassVar[str] = "ReservationCancelled"
    schema_version: ClassVar[int] = 1


class ReservationReleased(Strict):
    event_type: ClassVar[str] = "ReservationReleased"
    schema_version: ClassVar[int] = 1
    released: dict[str, int]


class ReservationCommitted(Strict):
    event_type: ClassVar[str] = "ReservationCommitted"
    schema_version: ClassVar[int] = 1
    committed: dict[str, int]


ReservationEvent = (
    OrderNoted
    | ReservationStarted
    | LineReserved
    | LineRejected
    | InventoryReserved
    | InventoryReservationFailed
    | ReservationCancelled
    | ReservationReleased
    | ReservationCommitted
)
RESERVATION_EVENTS: dict[str, type[ReservationEvent]] = {
    e.event_type: e
    for e in (
        OrderNoted,
        ReservationStarted,
        LineReserved,
        LineRejected,
        InventoryReserved,
        InventoryReservationFailed,
        ReservationCancelled,
        ReservationReleased,
        ReservationCommitted,
    )
}


class Reservation(Strict):
    order_id: str
    status: ReservationStatus = "none"
    lines: dict[str, int] = Field(default_factory=dict)
    reserved: dict[str, int] = Field(default_factory=dict)
    rejected: dict[str, str] = Field(default_factory=dict)
    cancelled: bool = False
    version: int = 0
