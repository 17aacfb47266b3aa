"""The Account decider: the rules of a bank account, pure and Kafka-free."""

from __future__ import annotations

from datetime import datetime

from domain.decider import Decider
from domain.errors import AlreadyExists, NotFound, RuleViolated
from models.accounts import (
    AGGREGATE_TYPE,
    COMMANDS,
    EVENTS,
    Account,
    AccountCommand,
    AccountEvent,
    AccountOpened,
    DepositMoney,
    MoneyDeposited,
    MoneyWithdrawn,
    OpenAccount,
    WithdrawMoney,
)
from models.money import MAX_AMOUNT


class InsufficientFunds(RuleViolated):
    code = "insufficient_funds"


class BalanceLimitExceeded(RuleViolated):
    """A balance is Money too: past MAX_AMOUNT the stored state could not be read back."""

    code = "balance_limit_exceeded"


def initial_state(account_id: str) -> Account:
    return Account(account_id=account_id)


def decide(command: AccountCommand, state: Account) -> list[AccountEvent]:
    """Which events a command produces against the current state, or why not."""
    match command:
        case OpenAccount(owner=owner):
            if state.exists:
                raise AlreadyExists(
                    f"account {state.account_id} already exists", account_id=state.account_id
                )
            return [AccountOpened(owner=owner)]
        case DepositMoney(amount=amount, reference=reference):
            _require_open(state)
            if state.balance + amount > MAX_AMOUNT:
                raise BalanceLimitExceeded(
                    f"a balance is limited to {MAX_AMOUNT}: balance {state.balance}, "
                    f"deposit {amount}",
                    balance=str(state.balance),
                    amount=str(amount),
                    limit=str(MAX_AMOUNT),
                )
            return [MoneyDeposited(amount=amount, reference=reference)]
        case WithdrawMoney(amount=amount, reference=reference):
            _require_open(state)
            if amount > state.balance:
                raise InsufficientFunds(
                    f"insufficient funds: balance {state.balance}, withdrawal {amount}",
                    balance=str(state.balance),
                    amount=str(amount),
                )
            return [MoneyWithdrawn(amount=amount, reference=reference)]
    raise TypeError(f"not an account command: {command!r}")


def evolve(state: Account, event: AccountEvent, at: datetime | None = None) -> Account:
    """The state after one event; `at` is when it occurred (from the envelope)."""
    version = state.version + 1
    match event:
        case AccountOpened(owner=owner):
            return state.evolved(owner=owner, version=version, opened_at=at, updated_at=at)
        case MoneyDeposited(amount=amount):
            return state.evolved(balance=state.balance + amount, version=version, updated_at=at)
        case MoneyWithdrawn(amount=amount):
            return state.evolved(balance=state.balance - amount, version=version, updated_at=at)
    raise TypeError(f"not an account event: {event!r}")


def _require_open(state: Account) -> None:
    if not state.exists:
        raise NotFound(f"account {state.account_id} does not exist", account_id=state.account_id)


ACCOUNTS: Decider[AccountCommand, AccountEvent, Account] = Decider(
    aggregate_type=AGGREGATE_TYPE,
    state_type=Account,
    commands=COMMANDS,
    events=EVENTS,
    initial_state=initial_state,
    decide=decide,
    evolve=evolve,
)
