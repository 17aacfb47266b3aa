"""Account context: commands, event payloads, the aggregate's state, the HTTP bodies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, Field, PositiveInt

from models.base import Strict
from models.ids import MAX_VERSION, AggregateId
from models.money import Money, PositiveMoney

AGGREGATE_TYPE = "account"


# --- commands (what a client asks for) -------------------------------------


class OpenAccount(Strict):
    command_type: ClassVar[str] = "OpenAccount"
    owner: str = Field(min_length=1, max_length=200)


class DepositMoney(Strict):
    command_type: ClassVar[str] = "DepositMoney"
    amount: PositiveMoney
    reference: str | None = Field(default=None, max_length=200)


class WithdrawMoney(Strict):
    command_type: ClassVar[str] = "WithdrawMoney"
    amount: PositiveMoney
    reference: str | None = Field(default=None, max_length=200)


AccountCommand = OpenAccount | DepositMoney | WithdrawMoney
COMMANDS: dict[str, type[AccountCommand]] = {
    c.command_type: c for c in (OpenAccount, DepositMoney, WithdrawMoney)
}


# --- events (what happened) -------------------------------------------------


class AccountOpened(Strict):
    event_type: ClassVar[str] = "AccountOpened"
    schema_version: ClassVar[int] = 1
    owner: str


class MoneyDeposited(Strict):
    event_type: ClassVar[str] = "MoneyDeposited"
    schema_version: ClassVar[int] = 1
    amount: Money
    reference: str | None = None


class MoneyWithdrawn(Strict):
    event_type: ClassVar[str] = "MoneyWithdrawn"
    schema_version: ClassVar[int] = 1
    amount: Money
    reference: str | None = None


AccountEvent = AccountOpened | MoneyDeposited | MoneyWithdrawn
EVENTS: dict[str, type[AccountEvent]] = {
    e.event_type: e for e in (AccountOpened, MoneyDeposited, MoneyWithdrawn)
}


# --- state (the fold of the events) ------------------------------------------


class Account(Strict):
    """The aggregate's state; version 0 means it does not exist yet."""

    account_id: str
    owner: str = ""
    balance: Money = Decimal("0.00")
    version: int = 0
    opened_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0


# --- HTTP bodies --------------------------------------------------------------


class OpenAccountRequest(Strict):
    account_id: AggregateId
    owner: str = Field(min_length=1, max_length=200)
    expected_version: int | None = Field(default=None, ge=0, le=MAX_VERSION)


class AmountRequest(Strict):
    amount: PositiveMoney
    reference: str | None = Field(default=None, max_length=200)
    expected_version: int | None = Field(default=None, ge=0, le=MAX_VERSION)


class AccountView(BaseModel):
    """`GET /accounts/{id}`: the read model, with the version it reflects."""

    account_id: str
    owner: str
    balance: Money
    version: int
    opened_at: datetime | None
    updated_at: datetime | None


class HistoryQuery(Strict):
    at_version: PositiveInt | None = None
    as_of: AwareDatetime | None = None
