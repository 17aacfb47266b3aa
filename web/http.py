"""What every endpoint shares: bounded JSON bodies, clear 4xx errors, auth, routing.

Errors are JSON `{"error": code, "reason": sentence, ...facts}`; validation
errors list each field with its reason. Nothing a client sends yields a 500.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from aiohttp import ClientError, web
from faust.web import Request, Response, View
from pydantic import BaseModel, ValidationError

from agents.folds import FoldRunner, NotHere
from app.command_bus import CommandTimeout, Overloaded, Stopping, command_bus
from app.faust_clients import fetch_metadata
from app.main import app
from app.metrics import COMMAND_RESULTS, timed_requests
from app.readiness import RECOVERING, serves_reads
from app.settings import settings
from models.envelope import CommandEnvelope, CommandResult
from models.ids import ID_PATTERN, MAX_VERSION
from models.tracing import TRACEPARENT, Trace, parse_traceparent
from tables.partition_store import PartitionStore
from tables.state_fold import state_row
from web.operations import MAX_STANDBY_LAG, STANDBY_LAG

M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., Awaitable[Response]]

_ID = re.compile(ID_PATTERN)
_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
_DIGITS = re.compile(r"[0-9]{1,12}")
_VERSION_TAG = re.compile(r'"?([0-9]{1,12})"?')


class HttpError(Exception):
    """Raised inside a view; turned into a JSON error response by `@handles_errors`."""

    def __init__(self, status: int, code: str, reason: str, **facts: Any) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason, self.facts = status, code, reason, facts
        self.headers: dict[str, str] = {}


def error_body(code: str, reason: str, **facts: Any) -> dict[str, Any]:
    return {"error": code, "reason": reason, **facts}


def handles_errors(fun: Handler) -> Handler:
    """Turn HttpError into its JSON response."""

    @wraps(fun)
    async def wrapper(view: View, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return await fun(view, request, *args, **kwargs)
        except HttpError as error:
            return view.json(
                error_body(error.code, error.reason, **error.facts),
                status=error.status,
                headers=error.headers or None,
            )

    return wrapper


_ROUTER_CODES = {404: "not_found", 405: "method_not_allowed"}


@web.middleware
async def errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """What aiohttp itself refuses (no such route, a method the route lacks) in the
    same JSON envelope as every other refusal, keeping its Allow header."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as error:
        if error.status < 400 or error.content_type == "application/json":
            raise
        code = _ROUTER_CODES.get(error.status, "http_error")
        reason = f"{error.reason}: {request.method} {request.path}"
        headers = {k: v for k, v in error.headers.items() if k in ("Allow", "Retry-After")}
        return web.json_response(error_body(code, reason), status=error.status, headers=headers)


cast(Any, app.web).web_app.middlewares.append(errors_as_json)
# outermost: it times what the client gets, the JSON refusals above included
cast(Any, app.web).web_app.middlewares.insert(0, timed_requests)


def validation_error(error: ValidationError) -> HttpError:
    fields = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]}
        for e in error.errors(include_url=False)
    ]
    names = ", ".join(f["field"] for f in fields)
    return HttpError(422, "invalid_request", f"invalid fields: {names}", fields=fields)


def check_id(value: str, name: str) -> str:
    if not _ID.fullmatch(value):  # fullmatch: `$` also matches before a final "\n"
        raise HttpError(
            422,
            "invalid_request",
            f"invalid {name}",
            fields=[{"field": name, "reason": "1-64 characters: letters, digits, . _ : -"}],
        )
    return value


async def read_body(request: Request, model: type[M]) -> M:
    """The request's JSON body, size-limited and validated against `model`."""
    raw_request = cast(web.Request, request)
    length = raw_request.content_length
    if length is not None and length > settings.max_body_bytes:
        raise HttpError(
            413, "body_too_large", f"body is limited to {settings.max_body_bytes} bytes"
        )
    # read(n) returns what has arrived so far (up to n), not the whole body: loop
    # until the end (or one byte past the limit), or a body sent in pieces is cut
    raw = b""
    while len(raw) <= settings.max_body_bytes:
        chunk = await raw_request.content.read(settings.max_body_bytes + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    if len(raw) > settings.max_body_bytes:
        raise HttpError(
            413, "body_too_large", f"body is limited to {settings.max_body_bytes} bytes"
        )
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as error:
        raise HttpError(400, "malformed_json", f"body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise HttpError(400, "malformed_json", "body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_error(error) from None


def require_token(request: Request) -> None:
    """Write endpoints need `Authorization: Bearer $API_TOKEN` when API_TOKEN is set."""
    if not settings.api_token:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token, settings.api_token):
        error = HttpError(401, "unauthorized", "a valid bearer token is required")
        error.headers["WWW-Authenticate"] = "Bearer"
        raise error


def admit_command(request: Request) -> None:
    """A command's request: authorized (`require_token`), and refused at once with 503
    and Retry-After, before its body is read, when this worker is at capacity."""
    require_token(request)
    try:
        command_bus.check_room()
    except Overloaded as overloaded:
        raise at_capacity(overloaded) from None


def at_capacity(overloaded: Overloaded, **facts: Any) -> HttpError:
    if isinstance(overloaded, Stopping):
        error = HttpError(
            503,
            "stopping",
            "this worker is stopping; the command was not sent: send it to another worker",
            **facts,
        )
        error.headers["Retry-After"] = "0"
        return error
    error = HttpError(
        503,
        "overloaded",
        f"this worker is at capacity ({overloaded}); the command was not sent: retry",
        **facts,
    )
    error.headers["Retry-After"] = "1"
    return error


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.fullmatch(key):
        raise HttpError(
            422,
            "invalid_request",
            "invalid Idempotency-Key",
            fields=[{"field": "Idempotency-Key", "reason": "1-128 printable ASCII characters"}],
        )
    return key


def expected_version(request: Request, from_body: int | None) -> int | None:
    """`If-Match: <version>` (quotes allowed) or `expected_version` in the body."""
    header = request.headers.get("If-Match")
    if header is None:
        return from_body
    match = _VERSION_TAG.fullmatch(header.strip())
    if match is None:
        raise HttpError(
            422,
            "invalid_request",
            "If-Match must be an aggregate version",
            fields=[{"field": "If-Match", "reason": "a non-negative integer"}],
        )
    return int(match.group(1))


def request_trace(request: Request) -> Trace:
    """The W3C traceparent a request brings, if valid; the command bus starts a trace
    for a request without one (an invalid one is ignored, as the standard asks)."""
    return parse_traceparent(request.headers.get(TRACEPARENT))


async def execute(topic: Any, command: CommandEnvelope, trace: Trace = None) -> CommandResult:
    try:
        return await command_bus.send(topic, command, trace=trace)
    except Overloaded as overloaded:
        raise at_capacity(overloaded, command_id=command.command_id) from None
    except CommandTimeout:
        error = HttpError(
            504,
            "command_timeout",
            "no answer in time; the command may still be applied: retry with the same "
            "Idempotency-Key to get its result",
            command_id=command.command_id,
        )
        error.headers["Retry-After"] = "1"
        raise error from None


async def command_body(request: Request, model: type[M], **path_ids: str) -> M:
    """A command's request body, once the request is admitted (`admit_command`) and the
    ids in its path are valid, in that order: a refusal costs no body read."""
    admit_command(request)
    for name, value in path_ids.items():
        check_id(value, name)
    return await read_body(request, model)


async def answer_command(
    view: View,
    request: Request,
    topic: Any,
    aggregate_id: str,
    payload: Any,
    expected: int | None,
    correlation_id: str | None = None,
    accepted: int = 201,
    **extra: Any,
) -> Response:
    """Send a client's command to its aggregate's owner; answer with its result."""
    command = new_command(request, aggregate_id, payload, expected, correlation_id)
    answer = await execute(topic, command, request_trace(request))
    return result_response(view, answer, accepted, **extra)


REJECTED_WITH = {"not_found": 404, "invalid_command": 422, "idempotency_key_reused": 422}
"""The HTTP status of a rejection by its code; any other is 409 (the aggregate's state
does not allow the command)."""


def http_status(result: CommandResult, accepted: int = 201) -> int:
    """The status a command's answer is sent with: `accepted` (201; 202 where the saga
    carries on) or its rejection's."""
    if result.outcome == "accepted":
        return accepted
    code = result.rejection.code if result.rejection is not None else ""
    return REJECTED_WITH.get(code, 409)


def result_response(
    view: View, result: CommandResult, accepted: int = 201, **extra: Any
) -> Response:
    """A command's answer with its HTTP status (also in the body, `status`); a rejection's
    facts are in `details` and, where no field of the answer has their name, at the top
    level too (`balance`, `available`)."""
    status = http_status(result, accepted)
    COMMAND_RESULTS.labels(command_type=result.command_type, status=str(status)).inc()
    body = {**result.model_dump(mode="json", exclude={"rejection"}), "status": status, **extra}
    if result.rejection is not None:
        rejection = result.rejection
        facts = {k: v for k, v in rejection.details.items() if k not in body}
        body = {
            **error_body(rejection.code, rejection.reason, **facts),
            "details": rejection.details,
            **body,
        }
    return view.json(body, status=status)


def owner_route(
    table: Any, param: str = "", *, query: bool = False, exact: str | None = None
) -> Callable[[Handler], Handler]:
    """Serve a request on the worker that owns the key's partition (faust's table_route):
    the key is a path parameter, a query parameter (`query=True`) or fixed (`exact`).
    503 while this worker recovers or does not know the owner yet. The forwarded
    request carries no body: fine for GETs and body-less POSTs."""

    def decorate(fun: Handler) -> Handler:
        if exact is not None:
            routed = app.table_route(table=table, exact_key=exact)(fun)
        elif query:
            routed = app.table_route(table=table, query_param=param)(fun)
        else:
            routed = app.table_route(table=table, match_info=param)(fun)

        @wraps(fun)
        async def wrapper(view: View, request: Request, *args: Any, **kwargs: Any) -> Response:
            source = (
                {param: exact}
                if exact is not None
                else (request.query if query else request.match_info)
            )
            if param not in source:
                raise HttpError(
                    422,
                    "invalid_request",
                    f"missing {param}",
                    fields=[{"field": param, "reason": "required"}],
                )
            if exact is None:
                check_id(source[param], param)
            if not serves_reads(app):
                raise not_ready(RECOVERING)
            bound = int_param(request, MAX_STANDBY_LAG.name, None, 0, MAX_VERSION)
            try:
                try:
                    answer = await routed(view, request, *args, **kwargs)
                except TypeError:
                    # the producer has no metadata for the changelog yet: fetch, retry once
                    await fetch_metadata(app.producer, table.changelog_topic.get_topic_name())
                    answer = await routed(view, request, *args, **kwargs)
            except (TimeoutError, KeyError, ConnectionError, ClientError) as error:
                if bound is None:
                    raise not_ready(
                        f"the owner of this key is not reachable yet ({error!r})"
                    ) from None
                return await _from_standby(fun, bound, view, request, *args, **kwargs)
            if bound is not None and answer.status == 503:  # the owner is not ready
                return await _from_standby(fun, bound, view, request, *args, **kwargs)
            return answer

        return wrapper

    return decorate


async def _from_standby(
    fun: Handler, bound: int, view: View, request: Request, *args: Any, **kwargs: Any
) -> Response:
    """The read answered here, from this worker's warm standby stores within `bound`;
    503 if it has none, or none that close to the log's end."""
    standby = StandbyRead(bound)
    token = STANDBY_READ.set(standby)
    try:
        answer = await fun(view, request, *args, **kwargs)
    finally:
        STANDBY_READ.reset(token)
    answer.headers[STANDBY_LAG] = str(standby.lag)
    return answer


def not_ready(reason: str) -> HttpError:
    error = HttpError(503, "not_ready", reason)
    error.headers["Retry-After"] = "1"
    return error


def new_command(
    request: Request,
    aggregate_id: str,
    payload: Any,
    expected: int | None,
    correlation_id: str | None = None,
) -> CommandEnvelope:
    """A client's command: its id from the Idempotency-Key (scoped to the aggregate) or new."""
    key = idempotency_key(request)
    command_id = f"{aggregate_id}:{key}" if key else str(uuid.uuid4())
    return CommandEnvelope(
        command_id=command_id,
        command_type=payload.command_type,
        aggregate_id=aggregate_id,
        expected_version=expected_version(request, expected),
        payload=payload.model_dump(mode="json"),
        correlation_id=correlation_id or command_id,
    )


def int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    """A query parameter that is a whole number from `low` to `high` (ASCII digits only:
    `str.isdigit` also takes "²", which `int` then refuses), or `default` when absent."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise HttpError(
            422,
            "invalid_request",
            f"invalid fields: {name}",
            fields=[{"field": name, "reason": f"an integer from {low} to {high}"}],
        )
    return int(raw)


def counted_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """`int_param` for a parameter that has a default (limit, last)."""
    value = int_param(request, name, default, low, high)
    return default if value is None else value


def min_version_param(request: Request) -> int | None:
    return int_param(request, "min_version", None, 0, MAX_VERSION)


@dataclass
class StandbyRead:
    """A read the owner could not answer, answered here from a warm standby store."""

    bound: int
    """The most records the standby may trail the log's end by (`max_standby_lag`)."""
    lag: int = 0
    """The most any store the read used trailed by."""


STANDBY_READ: ContextVar[StandbyRead | None] = ContextVar("standby_read", default=None)
"""Set while a read is answered from the standbys (`owner_route`)."""


def store_of(fold: FoldRunner, key: str) -> PartitionStore:
    """The partition store of a batched fold that holds `key`; 503 if not open here yet.
    In a standby read, this worker's warm standby of it, if within the read's bound."""
    try:
        return fold.store_for(key)
    except NotHere as error:
        standby = STANDBY_READ.get()
        if standby is None:
            raise not_ready(str(error)) from None
        try:
            store, lag = fold.standby_for(key)
        except NotHere as not_here:
            raise not_ready(f"{error}; {not_here}") from None
        if lag > standby.bound:
            raise not_ready(
                f"{error}; its standby here trails the log by {lag} records, "
                f"more than max_standby_lag={standby.bound}"
            ) from None
        standby.lag = max(standby.lag, lag)
        return store


class StateRows:
    """A batched fold's state rows by aggregate id, as `read_at_least` reads them: looked
    up afresh each time, since a rebuild may swap the store while a request waits."""

    def __init__(self, fold: FoldRunner) -> None:
        self.fold = fold

    def get(self, aggregate_id: str) -> dict[str, Any] | None:
        return state_row(store_of(self.fold, aggregate_id), aggregate_id)


async def read_at_least(table: Any, key: str, min_version: int | None) -> dict[str, Any] | None:
    """The read model's row; with `min_version`, once it reflects that version.

    Waits up to MIN_VERSION_WAIT, then answers 503 with Retry-After and both versions.
    """
    row = table.get(key)
    if min_version is None:
        return cast(dict[str, Any] | None, row)
    deadline = time.monotonic() + settings.min_version_wait
    while row is None or row["version"] < min_version:
        if time.monotonic() >= deadline:
            have = 0 if row is None else row["version"]
            error = HttpError(
                503,
                "behind",
                f"the read model is at version {have}, not yet {min_version}",
                version=have,
                min_version=min_version,
            )
            error.headers["Retry-After"] = "1"
            raise error
        await asyncio.sleep(0.02)
        row = table.get(key)
    return cast(dict[str, Any], row)
