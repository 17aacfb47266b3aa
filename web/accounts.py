"""Account endpoints: open, deposit, withdraw (commands); state, history, as-of (queries)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from faust.web import Request, Response, View
from pydantic import ValidationError

from agents.accounts import account_projection
from app.main import app
from app.topics import account_commands
from domain.accounts import ACCOUNTS
from models.accounts import (
    AccountView,
    AmountRequest,
    DepositMoney,
    HistoryQuery,
    OpenAccount,
    OpenAccountRequest,
    WithdrawMoney,
)
from models.ids import MAX_VERSION
from tables.owners import owners
from tables.state_fold import read_history
from web.answers import AccountEvents
from web.http import (
    HttpError,
    StateRows,
    answer_command,
    command_body,
    handles_errors,
    int_param,
    min_version_param,
    owner_route,
    read_at_least,
    store_of,
    validation_error,
)
from web.operations import (
    IDEMPOTENCY_KEY,
    IF_MATCH,
    MAX_STANDBY_LAG,
    MIN_VERSION,
    NOT_FOUND,
    Answer,
    Link,
    Param,
    command_answers,
    operation,
    path_id,
    read_answers,
)

ACCOUNT_ID = path_id("account_id", "The account")
OPENED = {
    "GetAccount": Link("AccountStateView", {"account_id": "$response.body#/account_id"}, "Read it"),
    "Deposit": Link("DepositView", {"account_id": "$response.body#/account_id"}, "Pay in"),
    "Withdraw": Link("WithdrawalView", {"account_id": "$response.body#/account_id"}, "Take out"),
}
MOVED = {
    "GetAccount": Link(
        "AccountStateView",
        {"account_id": "$request.path.account_id", "min_version": "$response.body#/version"},
        "Read the balance after this move",
    )
}


@app.page("/accounts")
class OpenAccountView(View):
    @operation(
        "Open an account",
        tag="accounts",
        body=OpenAccountRequest,
        params=(IDEMPOTENCY_KEY, IF_MATCH),
        answers=command_answers(201, rejections=(409,)),
        secured=True,
        links={201: OPENED},
    )
    @handles_errors
    async def post(self, request: Request) -> Response:
        body = await command_body(request, OpenAccountRequest)
        payload = OpenAccount(owner=body.owner)
        return await answer_command(
            self,
            request,
            account_commands,
            body.account_id,
            payload,
            body.expected_version,
            account_id=body.account_id,
        )


class _AmountView(View):
    payload_type: Any = DepositMoney

    @handles_errors
    async def move(self, request: Request, account_id: str) -> Response:
        body = await command_body(request, AmountRequest, account_id=account_id)
        payload = self.payload_type(amount=body.amount, reference=body.reference)
        return await answer_command(
            self, request, account_commands, account_id, payload, body.expected_version
        )


def _moving(summary: str) -> Any:
    return operation(
        summary,
        tag="accounts",
        body=AmountRequest,
        params=(ACCOUNT_ID, IDEMPOTENCY_KEY, IF_MATCH),
        answers=command_answers(201, rejections=(404, 409)),
        secured=True,
        links={201: MOVED},
    )


@app.page("/accounts/{account_id}/deposits")
class DepositView(_AmountView):
    payload_type = DepositMoney

    @_moving("Deposit money")
    async def post(self, request: Request, account_id: str) -> Response:
        return await self.move(request, account_id)


@app.page("/accounts/{account_id}/withdrawals")
class WithdrawalView(_AmountView):
    payload_type = WithdrawMoney

    @_moving("Withdraw money")
    async def post(self, request: Request, account_id: str) -> Response:
        """Refused with 409 when the balance does not cover it (`balance` says what
        there is)."""
        return await self.move(request, account_id)


def _history_query(request: Request) -> HistoryQuery:
    at_version = int_param(request, "at_version", None, 1, MAX_VERSION)
    try:
        query = HistoryQuery.model_validate(
            {"at_version": at_version, "as_of": request.query.get("as_of")}
        )
    except ValidationError as error:
        raise validation_error(error) from None
    if query.at_version is not None and query.as_of is not None:
        raise HttpError(422, "invalid_request", "give at_version or as_of, not both")
    return query


# requests go to the worker that decides the account's commands: it folds its events
routed_by_account = owners


AT_VERSION = Param(
    "at_version",
    "query",
    {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
    "The account as it was at this version (replayed from its events).",
)
AS_OF = Param(
    "as_of",
    "query",
    {"type": "string", "format": "date-time"},
    "The account as it was at this time, with its UTC offset (RFC 3339).",
)


@app.page("/accounts/{account_id}")
class AccountStateView(View):
    @operation(
        "Read an account",
        tag="accounts",
        params=(ACCOUNT_ID, MIN_VERSION, AT_VERSION, AS_OF, MAX_STANDBY_LAG),
        answers=read_answers(Answer(200, "The account.", AccountView), NOT_FOUND, standby=True),
    )
    @handles_errors
    @owner_route(routed_by_account, "account_id")
    async def get(self, request: Request, account_id: str) -> Response:
        """Its balance now (or, with `at_version` or `as_of`, then: not both)."""
        query = _history_query(request)
        if query.at_version is not None or query.as_of is not None:
            return self.json(as_of(account_id, query))
        row = await read_at_least(
            StateRows(account_projection), account_id, min_version_param(request)
        )
        if row is None:
            raise HttpError(404, "not_found", f"account {account_id} does not exist")
        return self.json(AccountView.model_validate(row).model_dump(mode="json"))


def as_of(account_id: str, query: HistoryQuery) -> dict[str, Any]:
    """The account's state at a version or a time, by replaying its own events."""
    history = read_history(store_of(account_projection, account_id), account_id)
    if not history:
        raise HttpError(404, "not_found", f"account {account_id} does not exist")
    if query.at_version is not None:
        if query.at_version > history[-1].aggregate_version:
            raise HttpError(
                404,
                "not_found",
                f"account {account_id} has no version {query.at_version}",
                version=history[-1].aggregate_version,
            )
        events = [e for e in history if e.aggregate_version <= query.at_version]
    else:
        cutoff: datetime = query.as_of  # type: ignore[assignment]
        events = [e for e in history if e.occurred_at <= cutoff]
        if not events:
            raise HttpError(404, "not_found", f"account {account_id} did not exist at {cutoff}")
    state = ACCOUNTS.replay(account_id, events)
    return AccountView(**state.model_dump()).model_dump(mode="json")


@app.page("/accounts/{account_id}/events")
class AccountEventsView(View):
    @operation(
        "An account's events",
        tag="accounts",
        params=(ACCOUNT_ID, MAX_STANDBY_LAG),
        answers=read_answers(
            Answer(200, "Every event, oldest first.", AccountEvents), NOT_FOUND, standby=True
        ),
    )
    @handles_errors
    @owner_route(routed_by_account, "account_id")
    async def get(self, request: Request, account_id: str) -> Response:
        history = read_history(store_of(account_projection, account_id), account_id)
        if not history:
            raise HttpError(404, "not_found", f"account {account_id} does not exist")
        return self.json(
            {
                "account_id": account_id,
                "version": history[-1].aggregate_version,
                "events": [e.model_dump(mode="json") for e in history],
            }
        )
