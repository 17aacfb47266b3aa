"""The saga's policies, one mapping at a time: which fact (or answer) leads to which command.

Every command a policy derives is named after its cause: the same event always yields
the same command id (so a redelivered fact is applied once), it is correlated to the
order, and its causation is the causing event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from domain import saga
from domain.saga import Dispatch, Fact
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope, Rejection

NOW = datetime(2026, 5, 1, tzinfo=UTC)
ADDRESS = {"name": "Ann", "street": "1 Main", "city": "X", "postal_code": "1", "country": "US"}


def event(
    aggregate_type: str,
    event_type: str,
    payload: dict[str, Any],
    aggregate_id: str = "o1",
    name: str | None = None,
) -> Fact:
    """The fact a policy sees: the envelope and its payload decoded as it would be."""
    return saga.fact_of(envelope(aggregate_type, event_type, payload, aggregate_id, name))


def ignored(aggregate_type: str, event_type: str) -> Fact:
    """A fact of a type the policy under test ignores (its payload does not matter)."""
    model = saga.EVENT_TYPES[event_type]
    return Fact(envelope(aggregate_type, event_type, {}), model.model_construct())


def envelope(
    aggregate_type: str,
    event_type: str,
    payload: dict[str, Any],
    aggregate_id: str = "o1",
    name: str | None = None,
) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, name or f"{aggregate_type}:{event_type}"),
        event_type=event_type,
        schema_version=1,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        aggregate_version=1,
        occurred_at=NOW,
        correlation_id="o1",
        causation_id="something-earlier",
        payload=payload,
    )


def assert_caused_by(command: CommandEnvelope | None, cause: Fact) -> CommandEnvelope:
    assert command is not None
    assert command.command_id.split(":", 1)[0] == str(cause.envelope.event_id)
    assert command.correlation_id == "o1"
    assert command.causation_id == str(cause.envelope.event_id)
    return command


PLACED = event(
    "order",
    "OrderPlaced",
    {
        "customer_id": "ann",
        "lines": [
            {"sku": "B", "quantity": 1, "unit_price": "5.00"},
            {"sku": "A", "quantity": 2, "unit_price": "10.00"},
        ],
        "discount": "0.00",
        "shipping_address": ADDRESS,
        "total": "25.00",
    },
)
PAID = event("order", "OrderPaid", {"amount": "25.00"})
RESERVED = event("order", "OrderReserved", {"shipping_address": ADDRESS})
SHIPPED = event("order", "OrderShipped", {"shipment_id": "shp-1"})
CANCELLED = event(
    "order", "OrderCancelled", {"reason": "customer_request", "previous_status": "paid"}
)
COMPLETED = event("order", "OrderCompleted", {})


# --- orders: follows what the others report ---------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "command_type", "payload"),
    [
        (
            event("payment", "PaymentCaptured", {"customer_id": "ann", "amount": "25.00"}),
            "MarkPaid",
            {"amount": "25.00"},
        ),
        (
            event(
                "payment",
                "PaymentDeclined",
                {"customer_id": "ann", "amount": "25.00", "reason": "insufficient_funds"},
            ),
            "CancelOrder",
            {"reason": "payment_declined", "detail": "insufficient_funds"},
        ),
        (
            event("reservation", "InventoryReserved", {"lines": {"A": 2}}),
            "MarkReserved",
            {},
        ),
        (
            event(
                "reservation",
                "InventoryReservationFailed",
                {"short": {"B": "insufficient_stock", "A": "not_found"}, "released": {}},
            ),
            "CancelOrder",
            {"reason": "out_of_stock", "detail": "A: not_found, B: insufficient_stock"},
        ),
        (
            event(
                "shipment", "ShipmentCreated", {"shipment_id": "shp-1", "shipping_address": None}
            ),
            "MarkShipped",
            {"shipment_id": "shp-1"},
        ),
    ],
)
def test_orders_follow_the_reports_of_payments_inventory_and_shipping(
    cause: Fact, command_type: str, payload: dict[str, Any]
) -> None:
    command = assert_caused_by(saga.orders_inbound(cause), cause)

    assert (command.command_type, command.aggregate_id, command.payload) == (
        command_type,
        "o1",
        payload,
    )
    assert command.command_id == str(cause.envelope.event_id)


@pytest.mark.parametrize(
    "event_type",
    [
        "PaymentRequested",
        "CancellationNoted",
        "RefundRequested",
        "PaymentRefunded",
        "OrderNoted",
        "LineReserved",
        "ReservationReleased",
        "ShipmentCancelled",
    ],
)
def test_orders_ignore_the_steps_that_change_nothing_for_the_order(event_type: str) -> None:
    assert saga.orders_inbound(ignored("payment", event_type)) is None


# --- payments ---------------------------------------------------------------------------------


def test_a_placed_order_asks_payments_for_its_total() -> None:
    command = assert_caused_by(saga.payments_inbound(PLACED), PLACED)

    assert command.command_type == "RequestPayment"
    assert command.aggregate_id == "o1"
    assert command.payload == {"customer_id": "ann", "amount": "25.00"}


def test_a_cancelled_order_asks_payments_for_a_refund() -> None:
    command = assert_caused_by(saga.payments_inbound(CANCELLED), CANCELLED)

    assert (command.command_type, command.payload) == (
        "RequestRefund",
        {"reason": "customer_request"},
    )


@pytest.mark.parametrize("cause", [PAID, RESERVED, SHIPPED, COMPLETED])
def test_payments_ignore_other_order_events(cause: Fact) -> None:
    assert saga.payments_inbound(cause) is None


def test_a_requested_payment_withdraws_from_the_customers_account_and_wants_the_answer() -> None:
    requested = event("payment", "PaymentRequested", {"customer_id": "ann", "amount": "25.00"})

    (dispatch,) = saga.payments_outbound(requested)

    assert (dispatch.target, dispatch.reply) == ("accounts", "payments")
    command = assert_caused_by(dispatch.command, requested)
    assert (command.command_type, command.aggregate_id) == ("WithdrawMoney", "ann")
    assert command.payload == {"amount": "25.00", "reference": "payment:o1"}


def test_a_requested_refund_deposits_back_to_the_customers_account() -> None:
    refund = event(
        "payment", "RefundRequested", {"customer_id": "ann", "amount": "25.00", "reason": "x"}
    )

    (dispatch,) = saga.payments_outbound(refund)

    assert (dispatch.target, dispatch.reply) == ("accounts", "payments")
    command = assert_caused_by(dispatch.command, refund)
    assert (command.command_type, command.aggregate_id) == ("DepositMoney", "ann")
    assert command.payload == {"amount": "25.00", "reference": "refund:o1"}


@pytest.mark.parametrize(
    "event_type", ["PaymentCaptured", "PaymentDeclined", "CancellationNoted", "PaymentRefunded"]
)
def test_other_payment_events_send_nothing(event_type: str) -> None:
    assert saga.payments_outbound(ignored("payment", event_type)) == []


def answer_to(
    command: CommandEnvelope, rejection: str | None = None, aggregate_id: str | None = None
) -> CommandResult:
    return CommandResult(
        command_id=command.command_id,
        command_type=command.command_type,
        aggregate_id=aggregate_id or command.aggregate_id,
        correlation_id=command.correlation_id,
        outcome="accepted" if rejection is None else "rejected",
        version=1,
        rejection=None if rejection is None else Rejection(code=rejection, reason="because"),
    )


@pytest.mark.parametrize(
    ("event_type", "answered_with"),
    [("PaymentRequested", "RecordCapture"), ("RefundRequested", "RecordRefund")],
)
@pytest.mark.parametrize("rejection", [None, "insufficient_funds"])
def test_the_accounts_answer_is_recorded_on_the_order_payment(
    event_type: str, answered_with: str, rejection: str | None
) -> None:
    payload = {"customer_id": "ann", "amount": "25.00"}
    cause = event(
        "payment",
        event_type,
        payload | ({"reason": "x"} if event_type == "RefundRequested" else {}),
    )
    (dispatch,) = saga.payments_outbound(cause)

    command = saga.payments_answer(answer_to(dispatch.command, rejection))

    assert command is not None
    assert (command.command_type, command.aggregate_id) == (answered_with, "o1")
    assert command.payload == {"accepted": rejection is None, "reason": rejection}
    assert command.command_id == f"{dispatch.command.command_id}:answer"
    assert (command.correlation_id, command.causation_id) == ("o1", str(cause.envelope.event_id))


def test_payments_ignore_answers_to_other_commands() -> None:
    other = CommandEnvelope(
        command_id="x",
        command_type="OpenAccount",
        aggregate_id="ann",
        payload={},
        correlation_id="o1",
    )
    assert saga.payments_answer(answer_to(other)) is None


# --- inventory --------------------------------------------------------------------------------


def test_a_placed_order_is_noted_by_its_reservation_with_quantity_per_sku() -> None:
    command = assert_caused_by(saga.reservations_inbound(PLACED), PLACED)

    assert (command.command_type, command.aggregate_id) == ("NoteOrder", "o1")
    assert command.payload == {"lines": {"A": 2, "B": 1}}


@pytest.mark.parametrize(
    ("cause", "command_type"),
    [(PAID, "StartReservation"), (CANCELLED, "CancelReservation"), (SHIPPED, "CommitReservation")],
)
def test_the_reservation_follows_the_order(cause: Fact, command_type: str) -> None:
    command = assert_caused_by(saga.reservations_inbound(cause), cause)

    assert (command.command_type, command.aggregate_id, command.payload) == (command_type, "o1", {})


@pytest.mark.parametrize("cause", [RESERVED, COMPLETED])
def test_the_reservation_ignores_the_rest(cause: Fact) -> None:
    assert saga.reservations_inbound(cause) is None


def test_a_started_reservation_fans_out_one_reserve_per_line_each_wanting_an_answer() -> None:
    started = event("reservation", "ReservationStarted", {"lines": {"B": 1, "A": 2}})

    dispatches = saga.reservations_outbound(started)

    assert [(d.target, d.reply) for d in dispatches] == [("stock", "reservations")] * 2
    commands = [assert_caused_by(d.command, started) for d in dispatches]
    assert [(c.command_type, c.aggregate_id, c.payload) for c in commands] == [
        ("ReserveStock", "A", {"order_id": "o1", "quantity": 2}),
        ("ReserveStock", "B", {"order_id": "o1", "quantity": 1}),
    ]
    assert [c.command_id for c in commands] == [
        f"{started.envelope.event_id}:A",
        f"{started.envelope.event_id}:B",
    ]


@pytest.mark.parametrize(
    ("event_type", "payload", "command_type", "skus"),
    [
        (
            "InventoryReservationFailed",
            {"short": {"C": "x"}, "released": {"B": 1, "A": 2}},
            "ReleaseStock",
            ["A", "B"],
        ),
        ("ReservationReleased", {"released": {"A": 2}}, "ReleaseStock", ["A"]),
        ("ReservationReleased", {"released": {}}, "ReleaseStock", []),
        ("ReservationCommitted", {"committed": {"B": 1, "A": 2}}, "CommitStock", ["A", "B"]),
    ],
)
def test_a_released_or_committed_reservation_tells_each_sku_and_wants_no_answer(
    event_type: str, payload: dict[str, Any], command_type: str, skus: list[str]
) -> None:
    cause = event("reservation", event_type, payload)

    dispatches = saga.reservations_outbound(cause)

    assert all(d.target == "stock" and d.reply is None for d in dispatches)
    commands = [assert_caused_by(d.command, cause) for d in dispatches]
    assert [c.aggregate_id for c in commands] == skus
    assert all(c.command_type == command_type for c in commands)
    assert all(c.payload == {"order_id": "o1"} for c in commands)


@pytest.mark.parametrize(
    "event_type", ["OrderNoted", "LineReserved", "LineRejected", "InventoryReserved"]
)
def test_other_reservation_events_send_nothing(event_type: str) -> None:
    assert saga.reservations_outbound(ignored("reservation", event_type)) == []


@pytest.mark.parametrize("rejection", [None, "insufficient_stock", "not_found"])
def test_each_stock_answer_is_recorded_as_its_line(rejection: str | None) -> None:
    started = event("reservation", "ReservationStarted", {"lines": {"A": 2, "B": 1}})
    dispatch = saga.reservations_outbound(started)[1]

    command = saga.reservations_answer(answer_to(dispatch.command, rejection))

    assert command is not None
    assert (command.command_type, command.aggregate_id) == ("RecordLine", "o1")
    assert command.payload == {"sku": "B", "accepted": rejection is None, "reason": rejection}
    assert command.command_id == f"{started.envelope.event_id}:B:answer"
    assert command.causation_id == str(started.envelope.event_id)


def test_reservations_ignore_answers_to_release_and_commit() -> None:
    failed = event("reservation", "ReservationReleased", {"released": {"A": 1}})
    (dispatch,) = saga.reservations_outbound(failed)

    assert saga.reservations_answer(answer_to(dispatch.command)) is None


# --- shipping ---------------------------------------------------------------------------------


def test_a_reserved_order_is_shipped_to_its_address() -> None:
    command = assert_caused_by(saga.shipping_inbound(RESERVED), RESERVED)

    assert (command.command_type, command.aggregate_id) == ("CreateShipment", "o1")
    assert command.payload == {"shipping_address": ADDRESS}


def test_a_cancelled_order_cancels_its_shipment() -> None:
    command = assert_caused_by(saga.shipping_inbound(CANCELLED), CANCELLED)

    assert (command.command_type, command.payload) == ("CancelShipment", {})


@pytest.mark.parametrize("cause", [PLACED, PAID, SHIPPED, COMPLETED])
def test_shipping_ignores_the_rest(cause: Fact) -> None:
    assert saga.shipping_inbound(cause) is None


# --- determinism ------------------------------------------------------------------------------

INBOUND: list[Callable[[Fact], CommandEnvelope | None]] = [
    saga.orders_inbound,
    saga.payments_inbound,
    saga.reservations_inbound,
    saga.shipping_inbound,
]
OUTBOUND: list[Callable[[Fact], list[Dispatch]]] = [
    saga.payments_outbound,
    saga.reservations_outbound,
]
EVERY_EVENT = [
    PLACED,
    PAID,
    RESERVED,
    SHIPPED,
    CANCELLED,
    event("payment", "PaymentRequested", {"customer_id": "ann", "amount": "1.00"}),
    event("payment", "RefundRequested", {"customer_id": "ann", "amount": "1.00", "reason": "r"}),
    event("payment", "PaymentCaptured", {"customer_id": "ann", "amount": "1.00"}),
    event("reservation", "ReservationStarted", {"lines": {"A": 1, "B": 2}}),
    event("reservation", "ReservationCommitted", {"committed": {"A": 1}}),
    event("shipment", "ShipmentCreated", {"shipment_id": "s", "shipping_address": None}),
]


def _commands(cause: Fact) -> list[CommandEnvelope]:
    return [command for _, command in _commands_by_policy(cause)]


def _commands_by_policy(cause: Fact) -> list[tuple[str, CommandEnvelope]]:
    found = [(p.__name__, c) for p in INBOUND if (c := p(cause)) is not None]
    return found + [(p.__name__, d.command) for p in OUTBOUND for d in p(cause)]


@pytest.mark.parametrize("cause", EVERY_EVENT, ids=lambda f: f.envelope.event_type)
def test_the_same_event_always_yields_the_same_commands(cause: Fact) -> None:
    first = _commands(cause)
    redelivered = _commands(
        saga.fact_of(EventEnvelope.model_validate_json(cause.envelope.model_dump_json()))
    )

    assert first, "every listed event leads somewhere"
    strip = {"issued_at"}  # the only field that may differ: when it was issued
    assert [c.model_dump(exclude=strip) for c in first] == [
        c.model_dump(exclude=strip) for c in redelivered
    ]
    for command in first:
        assert_caused_by(command, cause)


def test_no_two_facts_yield_the_same_command_for_one_services_aggregate() -> None:
    keyed = [
        (policy, command.aggregate_id, command.command_id)
        for cause in EVERY_EVENT
        for policy, command in _commands_by_policy(cause)
    ]

    assert len(set(keyed)) == len(keyed)
    # one fact may cause a command in several services (payments and inventory both react
    # to OrderPlaced): same id, but each service records its own results and event ids
    ids = [command_id for _, _, command_id in keyed]
    assert len(set(ids)) < len(ids)
