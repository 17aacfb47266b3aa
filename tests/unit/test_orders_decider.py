"""The Order decider as a story: given past events, when a command, then new events or a refusal.

An order is placed (its total is the sum of quantity x unit price, less the discount),
then follows pending -> paid -> reserved -> shipped -> completed, and can be cancelled
only while nothing has left the warehouse.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from domain.errors import AlreadyExists, NotFound
from domain.orders import ORDERS, InvalidTransition
from models.envelope import CommandEnvelope, CommandResult
from models.orders import (
    MAX_LINES,
    Address,
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
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderReserved,
    OrderShipped,
    PlaceOrder,
    PlaceOrderRequest,
)

NOW = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
ADDRESS = Address(
    name="Ann", street="1 Main St", city="Springfield", postal_code="12345", country="US"
)


def line(sku: str, quantity: int, price: str) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price=Decimal(price))


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "customer_id": "ann",
        "lines": [
            {"sku": "A", "quantity": 2, "unit_price": "10.00"},
            {"sku": "B", "quantity": 3, "unit_price": "5.50"},
        ],
        "discount": "1.50",
        **overrides,
    }


def placed(**overrides: Any) -> OrderPlaced:
    command = PlaceOrder.model_validate(body(**overrides))
    return OrderPlaced(
        customer_id=command.customer_id,
        lines=command.lines,
        discount=command.discount,
        shipping_address=command.shipping_address,
        total=Decimal("35.00"),
    )


PAID = OrderPaid(amount=Decimal("35.00"))
RESERVED = OrderReserved(shipping_address=None)
SHIPPED = OrderShipped(shipment_id="shp-1")


def given(*events: OrderEvent, order_id: str = "o1") -> Order:
    state = ORDERS.initial_state(order_id)
    for event in events:
        state = ORDERS.evolve(state, event, NOW)
    return state


def when(command: OrderCommand, state: Order) -> list[OrderEvent]:
    return ORDERS.decide(command, state)


def envelope(command_type: str, payload: dict[str, Any], command_id: str = "c1") -> CommandEnvelope:
    return CommandEnvelope(
        command_id=command_id,
        command_type=command_type,
        aggregate_id="o1",
        payload=payload,
        correlation_id="o1",
    )


def execute(command: CommandEnvelope, state: Order | None = None) -> tuple[CommandResult, Order]:
    return ORDERS.execute(command, state or ORDERS.initial_state("o1"), NOW)


# --- placing an order --------------------------------------------------------------------


def test_placing_an_order_totals_quantity_times_price_less_the_discount() -> None:
    command = PlaceOrderRequest.model_validate(body(order_id="o1")).command()

    events = when(command, given())

    # 2 x 10.00 + 3 x 5.50 = 36.50, less 1.50
    assert events == [
        OrderPlaced(
            customer_id="ann",
            lines=[line("A", 2, "10.00"), line("B", 3, "5.50")],
            discount=Decimal("1.50"),
            shipping_address=None,
            total=Decimal("35.00"),
        )
    ]


def test_an_order_without_discount_costs_its_subtotal_and_keeps_the_address() -> None:
    command = PlaceOrder.model_validate(
        body(discount="0", shipping_address=ADDRESS.model_dump(), lines=[body()["lines"][1]])
    )

    (event,) = when(command, given())

    assert isinstance(event, OrderPlaced)
    assert event.total == Decimal("16.50")
    assert event.shipping_address == ADDRESS


def test_a_placed_order_is_pending_with_its_lines_total_and_time() -> None:
    state = given(placed())

    assert state.exists
    assert (state.status, state.customer_id, state.total) == ("pending", "ann", Decimal("35.00"))
    assert [ln.sku for ln in state.lines] == ["A", "B"]
    assert (state.version, state.placed_at, state.updated_at) == (1, NOW, NOW)


def test_an_order_cannot_be_placed_twice() -> None:
    with pytest.raises(AlreadyExists):
        when(PlaceOrder.model_validate(body()), given(placed()))


def test_placing_through_execute_answers_202_with_a_version_1_event() -> None:
    result, state = execute(envelope("PlaceOrder", body()))

    assert (result.outcome, result.version) == ("accepted", 1)
    (event,) = result.events
    assert (event.event_type, event.schema_version, event.aggregate_version) == (
        "OrderPlaced",
        3,
        1,
    )
    assert event.payload["total"] == "35.00"  # money travels as a string, never a float
    assert (event.correlation_id, event.causation_id) == ("o1", "c1")
    assert state.status == "pending"


def _lines(n: int) -> list[dict[str, Any]]:
    return [{"sku": f"S{i}", "quantity": 1, "unit_price": "1.00"} for i in range(n)]


@pytest.mark.parametrize(
    ("overrides", "location", "words"),
    [
        pytest.param({"lines": []}, "lines", "at least 1", id="no-lines"),
        pytest.param({"lines": _lines(MAX_LINES + 1)}, "lines", "at most 50", id="too-many-lines"),
        pytest.param(
            {"lines": [{"sku": "A", "quantity": 1, "unit_price": "2.00"}] * 2},
            "lines",
            "repeated: A",
            id="duplicate-sku",
        ),
        pytest.param(
            {"lines": [{"sku": "A", "quantity": 0, "unit_price": "2.00"}]},
            "lines.0.quantity",
            "greater than 0",
            id="zero-quantity",
        ),
        pytest.param(
            {"lines": [{"sku": "A", "quantity": -3, "unit_price": "2.00"}]},
            "lines.0.quantity",
            "greater than 0",
            id="negative-quantity",
        ),
        pytest.param(
            {"lines": [{"sku": "A", "quantity": 1, "unit_price": "0.00"}]},
            "lines.0.unit_price",
            "greater than zero",
            id="zero-price",
        ),
        pytest.param(
            {"lines": [{"sku": "A", "quantity": 1, "unit_price": "-1.00"}]},
            "lines.0.unit_price",
            "greater than zero",
            id="negative-price",
        ),
        pytest.param(
            {"lines": [{"sku": "A", "quantity": 1, "unit_price": 9.99}]},
            "lines.0.unit_price",
            "not a float",
            id="float-price",
        ),
        pytest.param(
            {"discount": "36.50"}, "discount", "less than the order's subtotal", id="discount-eq"
        ),
        pytest.param(
            {"discount": "40.00"}, "discount", "less than the order's subtotal", id="discount-gt"
        ),
        pytest.param(
            {"discount": "-1.00"}, "discount", "must not be negative", id="discount-negative"
        ),
        pytest.param({"discount": 1.5}, "discount", "not a float", id="float-discount"),
    ],
)
@pytest.mark.parametrize("model", [PlaceOrder, PlaceOrderRequest])
def test_a_bad_order_is_refused_with_the_field_and_the_reason(
    model: type[PlaceOrder], overrides: dict[str, Any], location: str, words: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body(**overrides))

    errors = {".".join(str(p) for p in e["loc"]): e["msg"] for e in refused.value.errors()}
    assert location in errors, errors
    assert words in errors[location]


def test_fifty_lines_and_a_discount_just_below_the_subtotal_are_fine() -> None:
    command = PlaceOrder.model_validate(body(lines=_lines(MAX_LINES), discount="49.99"))

    (event,) = when(command, given())

    assert isinstance(event, OrderPlaced)
    assert event.total == Decimal("0.01")


def test_a_bad_payload_is_rejected_by_execute_with_422_and_nothing_changes() -> None:
    before = given()
    result, after = execute(envelope("PlaceOrder", body(lines=[])), before)

    assert result.rejection is not None
    assert (result.rejection.code, result.version) == ("invalid_command", 0)
    assert result.rejection is not None and result.rejection.code == "invalid_command"
    assert result.events == []
    assert after == before


def test_an_order_whose_total_exceeds_the_money_limit_is_refused_not_crashed() -> None:
    huge = body(lines=[{"sku": "A", "quantity": 10_000, "unit_price": "1000000.00"}], discount="0")

    result, _ = execute(envelope("PlaceOrder", huge))

    assert result.rejection is not None and result.rejection.code == "invalid_command"


# --- the life cycle -------------------------------------------------------------------------


def test_a_pending_order_is_paid_then_reserved_then_shipped_then_completed() -> None:
    assert when(MarkPaid(amount=Decimal("35.00")), given(placed())) == [PAID]
    assert when(MarkReserved(), given(placed(), PAID)) == [RESERVED]
    assert when(MarkShipped(shipment_id="shp-1"), given(placed(), PAID, RESERVED)) == [SHIPPED]
    assert when(CompleteOrder(), given(placed(), PAID, RESERVED, SHIPPED)) == [OrderCompleted()]


def test_each_step_moves_the_status_and_the_version() -> None:
    history: list[OrderEvent] = [placed(), PAID, RESERVED, SHIPPED, OrderCompleted()]
    statuses = [given(*history[: n + 1]).status for n in range(len(history))]

    assert statuses == ["pending", "paid", "reserved", "shipped", "completed"]
    final = given(*history)
    assert (final.version, final.shipment_id) == (5, "shp-1")


def test_reserving_carries_the_shipping_address_for_shipping() -> None:
    with_address = placed(shipping_address=ADDRESS.model_dump())

    assert when(MarkReserved(), given(with_address, PAID)) == [
        OrderReserved(shipping_address=ADDRESS)
    ]


@pytest.mark.parametrize(
    ("command", "history", "status"),
    [
        (MarkPaid(amount=Decimal("35.00")), [PAID], "paid"),  # paid twice
        (MarkReserved(), [], "pending"),  # reserved before paid
        (MarkShipped(shipment_id="s"), [PAID], "paid"),  # shipped before reserved
        (CompleteOrder(), [PAID, RESERVED], "reserved"),  # completed before shipped
        (CompleteOrder(), [PAID, RESERVED, SHIPPED, OrderCompleted()], "completed"),
    ],
)
def test_a_step_out_of_order_is_an_invalid_transition_naming_the_status(
    command: OrderCommand, history: list[OrderEvent], status: str
) -> None:
    with pytest.raises(InvalidTransition) as refused:
        when(command, given(placed(), *history))

    assert refused.value.code == "invalid_transition"
    assert refused.value.details["status"] == status


# --- cancelling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "status"),
    [([], "pending"), ([PAID], "paid"), ([PAID, RESERVED], "reserved")],
)
def test_an_order_is_cancelled_while_nothing_has_shipped(
    history: list[OrderEvent], status: str
) -> None:
    events = when(CancelOrder(reason="customer_request"), given(placed(), *history))

    assert events == [OrderCancelled(reason="customer_request", previous_status=status)]
    cancelled = given(placed(), *history, *events)
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "customer_request")


def test_a_cancellation_keeps_its_reason_and_detail() -> None:
    (event,) = when(
        CancelOrder(reason="payment_declined", detail="insufficient_funds"), given(placed())
    )

    state = given(placed(), event)
    assert (state.cancel_reason, state.cancel_detail) == ("payment_declined", "insufficient_funds")


@pytest.mark.parametrize(
    ("history", "status"),
    [
        ([PAID, RESERVED, SHIPPED], "shipped"),
        ([PAID, RESERVED, SHIPPED, OrderCompleted()], "completed"),
        ([OrderCancelled(reason="x", previous_status="pending")], "cancelled"),
    ],
)
def test_an_order_that_shipped_or_ended_cannot_be_cancelled(
    history: list[OrderEvent], status: str
) -> None:
    result, after = execute(envelope("CancelOrder", {}), given(placed(), *history))

    assert result.outcome == "rejected"
    assert result.rejection is not None and result.rejection.code == "invalid_transition"
    assert result.rejection.code == "invalid_transition"
    assert result.rejection.details == {
        "status": status,
        "allowed": ["pending", "paid", "reserved"],
    }
    assert after.status == status
    assert result.version == len(history) + 1


def test_a_cancelled_order_ignores_late_reports_by_refusing_them() -> None:
    cancelled = given(
        placed(), OrderCancelled(reason="customer_request", previous_status="pending")
    )

    for late in (MarkPaid(amount=Decimal("35.00")), MarkReserved(), MarkShipped(shipment_id="s")):
        with pytest.raises(InvalidTransition):
            when(late, cancelled)


# --- an order that does not exist -----------------------------------------------------------


@pytest.mark.parametrize(
    ("command_type", "payload"),
    [
        ("CancelOrder", {}),
        ("CompleteOrder", {}),
        ("MarkPaid", {"amount": "1.00"}),
        ("MarkReserved", {}),
        ("MarkShipped", {"shipment_id": "s"}),
    ],
)
def test_a_command_for_an_unknown_order_is_404(command_type: str, payload: dict[str, Any]) -> None:
    result, state = execute(envelope(command_type, payload))

    assert result.rejection is not None
    assert (result.rejection.code, result.version) == ("not_found", 0)
    assert result.rejection is not None and result.rejection.code == "not_found"
    assert result.rejection.details == {"order_id": "o1"}
    assert not state.exists


def test_not_found_is_raised_by_decide_too() -> None:
    with pytest.raises(NotFound):
        when(CancelOrder(), given())


# --- evolve and replay -------------------------------------------------------------------------


def test_replaying_the_recorded_events_rebuilds_the_state_the_commands_built() -> None:
    steps = [
        ("PlaceOrder", body(shipping_address=ADDRESS.model_dump())),
        ("MarkPaid", {"amount": "35.00"}),
        ("MarkReserved", {}),
        ("MarkShipped", {"shipment_id": "shp-9"}),
        ("CompleteOrder", {}),
    ]
    state = ORDERS.initial_state("o1")
    log = []
    for n, (command_type, payload) in enumerate(steps):
        result, state = execute(envelope(command_type, payload, f"c{n}"), state)
        assert result.outcome == "accepted", result.rejection
        log += result.events

    assert [e.aggregate_version for e in log] == [1, 2, 3, 4, 5]
    assert ORDERS.replay("o1", log) == state
    # a temporal query: the order as it was after version 2
    assert ORDERS.replay("o1", log[:2]).status == "paid"


def test_an_unknown_event_is_not_silently_folded() -> None:
    with pytest.raises(TypeError):
        ORDERS.evolve(given(), MarkPaid(amount=Decimal("1.00")), NOW)  # type: ignore[arg-type]
