"""Account endpoints: open, deposit, withdraw (commands); state, history, as-of (queries)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any

from faust.web import Request, Response, View
from pydantic import ValidationError

from app.main import app
from app.settings import settings
from app.topics import account_commands
from domain.accounts import ACCOUNTS
from models.accounts import (
    Account,
    AccountView,
    AmountRequest,
    DepositMoney,
    HistoryQuery,
    OpenAccount,
    OpenAccountRequest,
    WithdrawMoney,
)
from models.envelope import CommandEnvelope
from tables.accounts import accounts, read_history
from web.http import (
    HttpError,
    check_id,
    execute,
    expected_version,
    handles_errors,
    idempotency_key,
    owner_route,
    read_body,
    require_token,
    result_response,
    validation_error,
)


def command(
    request: Request, account_id: str, payload: Any, expected: int | None
) -> CommandEnvelope:
    key = idempotency_key(request)
    command_id = f"{account_id}:{key}" if key else str(uuid.uuid4())
    return CommandEnvelope(
        command_id=command_id,
        command_type=payload.command_type,
        aggregate_id=account_id,
        expected_version=expected_version(request, expected),
        payload=payload.model_dump(mode="json"),
        correlation_id=command_id,
    )


@app.page("/accounts")
class OpenAccountView(View):
    @handles_errors
    async def post(self, request: Request) -> Response:
        require_token(request)
        body = await read_body(request, OpenAccountRequest)
        cmd = command(
            request, body.account_id, OpenAccount(owner=body.owner), body.expected_version
        )
        return result_response(
            self, await execute(account_commands, cmd), account_id=body.account_id
        )


class _AmountView(View):
    payload_type: Any = DepositMoney

    @handles_errors
    async def post(self, request: Request, account_id: str) -> Response:
        require_token(request)
        check_id(account_id, "account_id")
        body = await read_body(request, AmountRequest)
        payload = self.payload_type(amount=body.amount, reference=body.reference)
        cmd = command(request, account_id, payload, body.expected_version)
        return result_response(self, await execute(account_commands, cmd))


@app.page("/accounts/{account_id}/deposits")
class DepositView(_AmountView):
    payload_type = DepositMoney


@app.page("/accounts/{account_id}/withdrawals")
class WithdrawalView(_AmountView):
    payload_type = WithdrawMoney


def _query(request: Request) -> tuple[HistoryQuery, int | None]:
    try:
        query = HistoryQuery.model_validate(
            {k: request.query[k] for k in ("at_version", "as_of") if k in request.query}
        )
        raw_min = request.query.get("min_version")
        min_version = None if raw_min is None else int(raw_min)
    except ValidationError as error:
        raise validation_error(error) from None
    except ValueError:
        raise HttpError(
            422,
            "invalid_request",
            "invalid fields: min_version",
            fields=[{"field": "min_version", "reason": "an integer"}],
        ) from None
    if query.at_version is not None and query.as_of is not None:
        raise HttpError(422, "invalid_request", "give at_version or as_of, not both")
    return query, min_version


async def wait_for_version(account_id: str, min_version: int) -> Account | None:
    """The read model once it reflects `min_version`, or None after the bounded wait."""
    deadline = time.monotonic() + settings.min_version_wait
    while True:
        stored = accounts.get(account_id)
        if stored is not None and stored["version"] >= min_version:
            return Account.model_validate(stored)
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.02)


@app.page("/accounts/{account_id}")
class AccountStateView(View):
    @handles_errors
    @owner_route(accounts, "account_id")
    async def get(self, request: Request, account_id: str) -> Response:
        query, min_version = _query(request)
        if query.at_version is not None or query.as_of is not None:
            return self.json(as_of(account_id, query))
        stored = accounts.get(account_id)
        if min_version is not None:
            state = await wait_for_version(account_id, min_version)
            if state is None:
                have = 0 if stored is None else accounts.get(account_id, {}).get("version", 0)
                error = HttpError(
                    503,
                    "behind",
                    f"the read model is at version {have}, not yet {min_version}",
                    version=have,
                    min_version=min_version,
                )
                error.headers["Retry-After"] = "1"
                raise error
            return self.json(AccountView(**state.model_dump()).model_dump(mode="json"))
        if stored is None:
            raise HttpError(404, "not_found", f"account {account_id} does not exist")
        return self.json(AccountView.model_validate(stored).model_dump(mode="json"))


def as_of(account_id: str, query: HistoryQuery) -> dict[str, Any]:
    """The account's state at a version or a time, by replaying its own events."""
    history = read_history(account_id)
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
    @owner_route(accounts, "account_id")
    async def get(self, request: Request, account_id: str) -> Response:
        history = read_history(account_id)
        if not history:
            raise HttpError(404, "not_found", f"account {account_id} does not exist")
        return self.json(
            {
                "account_id": account_id,
                "version": history[-1].aggregate_version,
                "events": [e.model_dump(mode="json") for e in history],
            }
        )
