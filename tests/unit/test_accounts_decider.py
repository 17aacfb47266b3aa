"""The account's rules as a story, without Kafka: decide what happens, evolve the state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.accounts import (
    ACCOUNTS,
    BalanceLimitExceeded,
    InsufficientFunds,
    decide,
    evolve,
    initial_state,
)
from domain.errors import AlreadyExists, NotFound, RuleViolated
from models.accounts import (
    Account,
    AccountOpened,
    DepositMoney,
    MoneyDeposited,
    MoneyWithdrawn,
    OpenAccount,
    WithdrawMoney,
)
from models.envelope import CommandEnvelope, EventEnvelope
from models.money import MAX_AMOUNT

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def money(text: str) -> Decimal:
    return Decimal(text)


def opened(owner: str = "Ann", balance: str = "0.00") -> Account:
    """An account that was opened (and, if `balance` is given, funded)."""
    state = evolve(initial_state("acc-1"), AccountOpened(owner=owner), T0)
    if Decimal(balance) > 0:
        state = evolve(state, MoneyDeposited(amount=money(balance)), T0)
    return state


# --- opening --------------------------------------------------------------------------


def test_a_new_account_does_not_exist_until_it_is_opened() -> None:
    state = initial_state("acc-1")
    assert not state.exists
    assert (state.version, state.balance, state.owner) == (0, Decimal("0.00"), "")


def test_opening_an_account_records_who_owns_it() -> None:
    assert decide(OpenAccount(owner="Ann"), initial_state("acc-1")) == [AccountOpened(owner="Ann")]


def test_an_account_cannot_be_opened_twice() -> None:
    with pytest.raises(AlreadyExists) as error:
        decide(OpenAccount(owner="Bob"), opened("Ann"))
    assert error.value.code == "already_exists"
    assert error.value.details == {"account_id": "acc-1"}


# --- money in and out -----------------------------------------------------------------


def test_money_can_be_deposited_into_an_open_account() -> None:
    events = decide(DepositMoney(amount=money("25.00"), reference="salary"), opened())
    assert events == [MoneyDeposited(amount=money("25.00"), reference="salary")]


def test_money_can_be_withdrawn_up_to_the_whole_balance() -> None:
    events = decide(WithdrawMoney(amount=money("40.00")), opened(balance="40.00"))
    assert events == [MoneyWithdrawn(amount=money("40.00"))]


@pytest.mark.parametrize(
    "command", [DepositMoney(amount=Decimal("1.00")), WithdrawMoney(amount=Decimal("1.00"))]
)
def test_money_cannot_move_on_an_account_that_does_not_exist(
    command: DepositMoney | WithdrawMoney,
) -> None:
    with pytest.raises(NotFound) as error:
        decide(command, initial_state("ghost"))
    assert error.value.code == "not_found"
    assert error.value.details == {"account_id": "ghost"}


def test_an_account_cannot_be_overdrawn_and_the_refusal_says_the_balance() -> None:
    with pytest.raises(InsufficientFunds) as error:
        decide(WithdrawMoney(amount=money("40.01")), opened(balance="40.00"))
    assert isinstance(error.value, RuleViolated)
    assert error.value.code == "insufficient_funds"
    assert error.value.details == {"balance": "40.00", "amount": "40.01"}
    assert "40.00" in error.value.reason


def test_an_empty_account_cannot_pay_a_cent() -> None:
    with pytest.raises(InsufficientFunds):
        decide(WithdrawMoney(amount=money("0.01")), opened())


def test_a_balance_never_grows_past_what_money_can_hold() -> None:
    """A balance is Money too: a deposit that would take it past the limit is refused,
    otherwise the stored state could not be read back (and the account would be stuck)."""
    rich = opened(balance=str(MAX_AMOUNT))
    with pytest.raises(BalanceLimitExceeded) as error:
        decide(DepositMoney(amount=money("0.01")), rich)
    assert error.value.code == "balance_limit_exceeded"
    assert error.value.details["balance"] == str(MAX_AMOUNT)
    # up to the limit is fine
    assert decide(DepositMoney(amount=money("1.00")), opened(balance=str(MAX_AMOUNT - 1)))


# --- evolve: the state is the fold of the events ----------------------------------------


def test_evolve_folds_balance_version_and_times() -> None:
    t1, t2, t3 = T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    state = evolve(initial_state("acc-1"), AccountOpened(owner="Ann"), t1)
    assert (state.owner, state.version, state.opened_at, state.updated_at) == ("Ann", 1, t1, t1)
    state = evolve(state, MoneyDeposited(amount=money("100.00")), t2)
    assert (state.balance, state.version, state.updated_at) == (money("100.00"), 2, t2)
    state = evolve(state, MoneyWithdrawn(amount=money("30.50")), t3)
    assert (state.balance, state.version, state.updated_at) == (money("69.50"), 3, t3)
    assert state.opened_at == t1  # opening is remembered


def test_evolve_never_changes_the_state_it_was_given() -> None:
    before = opened(balance="10.00")
    after = evolve(before, MoneyDeposited(amount=money("5.00")), T0)
    assert before.balance == money("10.00") and before.version == 2
    assert after.balance == money("15.00") and after.version == 3


def test_the_folded_state_survives_a_round_trip_through_json() -> None:
    state = opened(balance="12.34")
    stored = state.model_dump(mode="json")
    assert stored["balance"] == "12.34"
    assert Account.model_validate(stored) == state


# --- replay is the same fold ------------------------------------------------------------


def envelopes(
    account_id: str, *events: AccountOpened | MoneyDeposited | MoneyWithdrawn
) -> list[EventEnvelope]:
    """The events as the event store holds them: enveloped, versioned 1..n."""
    return [
        EventEnvelope(
            event_id=f"00000000-0000-0000-0000-{n:012d}",
            event_type=type(event).event_type,
            schema_version=1,
            aggregate_type="account",
            aggregate_id=account_id,
            aggregate_version=n,
            occurred_at=T0 + timedelta(seconds=n),
            correlation_id="c",
            causation_id="c",
            payload=event.model_dump(mode="json"),
        )
        for n, event in enumerate(events, start=1)
    ]


def test_replaying_the_stored_events_equals_folding_evolve() -> None:
    story: list[AccountOpened | MoneyDeposited | MoneyWithdrawn] = [
        AccountOpened(owner="Ann"),
        MoneyDeposited(amount=money("100.00"), reference="salary"),
        MoneyWithdrawn(amount=money("19.99")),
        MoneyDeposited(amount=money("0.01")),
    ]
    stored = envelopes("acc-1", *story)
    folded = initial_state("acc-1")
    for envelope, event in zip(stored, story, strict=True):
        folded = evolve(folded, event, envelope.occurred_at)
    replayed = ACCOUNTS.replay("acc-1", stored)
    assert replayed == folded
    assert (replayed.balance, replayed.version) == (money("80.02"), 4)
    # a prefix of the stream is the state at that version (temporal queries)
    assert ACCOUNTS.replay("acc-1", stored[:2]).balance == money("100.00")
    assert ACCOUNTS.replay("acc-1", []) == initial_state("acc-1")


def test_deciding_then_evolving_is_what_the_decider_executes() -> None:
    """The command side (execute) and the fold agree: same state either way."""
    state = initial_state("acc-1")
    commands: list[OpenAccount | DepositMoney] = [
        OpenAccount(owner="Ann"),
        DepositMoney(amount=money("9.00")),
    ]
    results = []
    for n, payload in enumerate(commands):
        envelope = CommandEnvelope(
            command_id=f"cmd-{n}",
            command_type=payload.command_type,
            aggregate_id="acc-1",
            payload=payload.model_dump(mode="json"),
            correlation_id=f"cmd-{n}",
        )
        result, state = ACCOUNTS.execute(envelope, state, T0)
        results.append(result)
    events = [e for r in results for e in r.events]
    assert ACCOUNTS.replay("acc-1", events) == state
