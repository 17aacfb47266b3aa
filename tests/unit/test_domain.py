"""The domain's story without Kafka: money, the account, the order and the stock."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from domain.accounts import ACCOUNTS, InsufficientFunds
from domain.errors import AlreadyExists, NotFound
from domain.inventory import RESERVATIONS, STOCKS, InsufficientStock
from domain.orders import ORDERS, InvalidTransition
from models.accounts import AmountRequest, DepositMoney, OpenAccount, WithdrawMoney
from models.envelope import CommandEnvelope
from models.inventory import AddStock, ReserveStock
from models.money import parse_money
from models.orders import PlaceOrderRequest

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def command(
    aggregate_id: str, payload: Any, command_id: str = "c1", **extra: Any
) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=command_id,
        command_type=payload.command_type,
        aggregate_id=aggregate_id,
        payload=payload.model_dump(mode="json"),
        correlation_id=command_id,
        **extra,
    )


# --- money -----------------------------------------------------------------------------


def test_money_is_parsed_from_strings_and_never_from_floats() -> None:
    assert parse_money("10") == Decimal("10.00")
    assert parse_money("0.1") == Decimal("0.10")
    with pytest.raises(ValueError, match="not a float"):
        parse_money(0.1)
    with pytest.raises(ValueError, match="two decimal places"):
        parse_money("1.001")
    with pytest.raises(ValueError):
        parse_money("NaN")
    with pytest.raises(ValueError, match="limited"):
        parse_money("1e12")


def test_an_amount_must_be_positive() -> None:
    with pytest.raises(ValidationError) as error:
        AmountRequest.model_validate({"amount": "0"})
    assert error.value.errors()[0]["loc"] == ("amount",)


# --- the account -------------------------------------------------------------------------


def run(decider: Any, aggregate_id: str, *payloads: Any) -> Any:
    state = decider.initial_state(aggregate_id)
    for n, payload in enumerate(payloads):
        result, state = decider.execute(command(aggregate_id, payload, f"c{n}"), state, NOW)
        assert result.outcome == "accepted", result.rejection
    return state


def test_an_account_is_opened_funded_and_drawn() -> None:
    state = run(
        ACCOUNTS,
        "acc",
        OpenAccount(owner="Ann"),
        DepositMoney(amount=Decimal("100.00")),
        WithdrawMoney(amount=Decimal("30.50")),
    )
    assert state.balance == Decimal("69.50") and state.version == 3


def test_an_account_cannot_be_overdrawn_or_opened_twice() -> None:
    state = run(ACCOUNTS, "acc", OpenAccount(owner="Ann"), DepositMoney(amount=Decimal("10")))
    with pytest.raises(InsufficientFunds) as short:
        ACCOUNTS.decide(WithdrawMoney(amount=Decimal("10.01")), state)
    assert short.value.details["balance"] == "10.00"
    with pytest.raises(AlreadyExists):
        ACCOUNTS.decide(OpenAccount(owner="Ann"), state)
    with pytest.raises(NotFound):
        ACCOUNTS.decide(DepositMoney(amount=Decimal("1")), ACCOUNTS.initial_state("nobody"))


def test_execution_is_deterministic_and_rejections_change_nothing() -> None:
    state = run(ACCOUNTS, "acc", OpenAccount(owner="Ann"))
    deposit = command("acc", DepositMoney(amount=Decimal("5")), "same-id")
    first, after = ACCOUNTS.execute(deposit, state, NOW)
    again, _ = ACCOUNTS.execute(deposit, state, NOW)
    assert [e.event_id for e in first.events] == [e.event_id for e in again.events]
    assert first.events[0].aggregate_version == 2 and after.version == 2

    stale = command("acc", DepositMoney(amount=Decimal("5")), "stale", expected_version=7)
    rejected, unchanged = ACCOUNTS.execute(stale, after, NOW)
    assert rejected.rejection is not None and rejected.rejection.code == "version_conflict"
    assert rejected.rejection.details == {"expected_version": 7, "actual_version": 2}
    assert unchanged == after


def test_the_state_is_a_replay_of_the_events() -> None:
    state = ACCOUNTS.initial_state("acc")
    events = []
    for n, payload in enumerate(
        [
            OpenAccount(owner="Ann"),
            DepositMoney(amount=Decimal("3")),
            WithdrawMoney(amount=Decimal("1")),
        ]
    ):
        result, state = ACCOUNTS.execute(command("acc", payload, f"c{n}"), state, NOW)
        events += result.events
    assert ACCOUNTS.replay("acc", events) == state
    assert ACCOUNTS.replay("acc", events[:2]).balance == Decimal("3.00")


# --- the order ---------------------------------------------------------------------------


def order_request(**overrides: Any) -> PlaceOrderRequest:
    body = {
        "customer_id": "acc",
        "lines": [
            {"sku": "A", "quantity": 2, "unit_price": "10.00"},
            {"sku": "B", "quantity": 1, "unit_price": "5.50"},
        ],
        "discount": "1.50",
        **overrides,
    }
    return PlaceOrderRequest.model_validate(body)


def test_an_order_totals_its_lines_less_the_discount_and_follows_its_life_cycle() -> None:
    from models.orders import CompleteOrder, MarkPaid, MarkReserved, MarkShipped

    placed = run(ORDERS, "o1", order_request().command())
    assert placed.total == Decimal("24.00") and placed.status == "pending"
    shipped = run(
        ORDERS,
        "o1",
        order_request().command(),
        MarkPaid(amount=Decimal("24.00")),
        MarkReserved(),
        MarkShipped(shipment_id="s1"),
        CompleteOrder(),
    )
    assert shipped.status == "completed" and shipped.version == 5


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "A", "quantity": 0, "unit_price": "1"}]}, "lines.0.quantity"),
        ({"lines": [{"sku": "A", "quantity": 1, "unit_price": "0"}]}, "lines.0.unit_price"),
        ({"lines": [{"sku": "A", "quantity": 1, "unit_price": 1.5}]}, "lines.0.unit_price"),
        (
            {"lines": [{"sku": "A", "quantity": 1, "unit_price": "1"}] * 2},
            "lines",
        ),
        ({"discount": "100.00"}, "discount"),
    ],
)
def test_a_bad_order_is_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        order_request(**overrides)
    locs = [".".join(str(p) for p in e["loc"]) for e in error.value.errors()]
    assert field in locs


def test_an_order_is_cancelled_only_before_shipping() -> None:
    from models.orders import CancelOrder, MarkPaid, MarkReserved, MarkShipped

    paid = run(ORDERS, "o1", order_request().command(), MarkPaid(amount=Decimal("24")))
    assert ORDERS.decide(CancelOrder(), paid)[0].previous_status == "paid"  # type: ignore[union-attr]
    shipped = run(
        ORDERS,
        "o1",
        order_request().command(),
        MarkPaid(amount=Decimal("24")),
        MarkReserved(),
        MarkShipped(shipment_id="s"),
    )
    with pytest.raises(InvalidTransition) as refused:
        ORDERS.decide(CancelOrder(), shipped)
    assert refused.value.details["status"] == "shipped"


# --- stock and reservations ------------------------------------------------------------------


def test_stock_is_never_oversold() -> None:
    stock = run(STOCKS, "A", AddStock(quantity=3), ReserveStock(order_id="o1", quantity=2))
    assert (stock.on_hand, stock.reserved, stock.available) == (3, 2, 1)
    with pytest.raises(InsufficientStock) as short:
        STOCKS.decide(ReserveStock(order_id="o2", quantity=2), stock)
    assert short.value.details["available"] == 1
    assert STOCKS.decide(ReserveStock(order_id="o1", quantity=2), stock) == []  # again: nothing


def test_a_reservation_that_comes_up_short_releases_what_it_held() -> None:
    from models.inventory import NoteOrder, RecordLine, StartReservation

    state = run(RESERVATIONS, "o1", NoteOrder(lines={"A": 1, "B": 2}), StartReservation())
    state = run_on(state, RecordLine(sku="A", accepted=True))
    result, state = RESERVATIONS.execute(
        command("o1", RecordLine(sku="B", accepted=False, reason="insufficient_stock"), "cB"),
        state,
        NOW,
    )
    types = [e.event_type for e in result.events]
    assert types == ["LineRejected", "InventoryReservationFailed"]
    assert result.events[-1].payload == {"short": {"B": "insufficient_stock"}, "released": {"A": 1}}


def run_on(state: Any, payload: Any) -> Any:
    result, after = RESERVATIONS.execute(command(state.order_id, payload, "x"), state, NOW)
    assert result.outcome == "accepted"
    return after
