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
from tables.owners import owners
from tables.state_fold import read_history
from web.http import (
    HttpError,
    StateRows,
    admit_command,
    check_id,
    execute,
    handles_errors,
    min_version_param,
    new_command,
    owner_route,
    read_at_least,
    read_body,
    result_response,
    store_of,
    validation_error,
)


@app.page("/accounts")
class OpenAccountView(View):
    @handles_errors
    async def post(self, request: Request) -> Response:
        admit_command(request)
        body = await read_body(request, OpenAccountRequest)
        payload = OpenAccount(owner=body.owner)
        cmd = new_command(request, body.account_id, payload, body.expected_version)
        result = await execute(account_commands, cmd)
        return result_response(self, result, account_id=body.account_id)


class _AmountView(View):
    payload_type: Any = DepositMoney

    @handles_errors
    async def post(self, request: Request, account_id: str) -> Response:
        admit_command(request)
        check_id(account_id, "account_id")
        body = await read_body(request, AmountRequest)
        payload = self.payload_type(amount=body.amount, reference=body.reference)
        cmd = new_command(request, account_id, payload, body.expected_version)
        return result_response(self, await execute(account_commands, cmd))


@app.page("/accounts/{account_id}/deposits")
class DepositView(_AmountView):
    payload_type = DepositMoney


@app.page("/accounts/{account_id}/withdrawals")
class WithdrawalView(_AmountView):
    payload_type = WithdrawMoney


def _history_query(request: Request) -> HistoryQuery:
    try:
        query = HistoryQuery.model_validate(
            {k: request.query[k] for k in ("at_version", "as_of") if k in request.query}
        )
    except ValidationError as error:
        raise validation_error(error) from None
    if query.at_version is not None and query.as_of is not None:
        raise HttpError(422, "invalid_request", "give at_version or as_of, not both")
    return query


# requests go to the worker that decides the account's commands: it folds its events
routed_by_account = owners


@app.page("/accounts/{account_id}")
class AccountStateView(View):
    @handles_errors
    @owner_route(routed_by_account, "account_id")
    async def get(self, request: Request, account_id: str) -> Response:
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
