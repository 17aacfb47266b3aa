"""How a view method states its HTTP contract: `@operation(...)` next to the handler.

The OpenAPI document (web/openapi.py) is assembled from these declarations and
the router's own routes, so a route cannot exist undocumented without a test failing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from models.ids import ID_PATTERN
from web.answers import CommandAnswer, ErrorBody

F = TypeVar("F", bound=Callable[..., Any])
Body = type[BaseModel] | tuple[type[BaseModel], ...] | dict[str, Any] | None

JSON = "application/json"


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter, with the schema the handler enforces."""

    name: str
    where: Literal["path", "query", "header"]
    schema: Mapping[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Answer:
    """One response: its status, what it means, its body (a model, a union of models, or
    a raw schema) per media type, and the headers it carries."""

    status: int
    description: str
    body: Body = ErrorBody
    media: tuple[str, ...] = (JSON,)
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: which operation follows, and where its parameters come from."""

    operation_id: str
    parameters: Mapping[str, str]
    description: str


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    answers: tuple[Answer, ...]
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    secured: bool = False
    """Needs `Authorization: Bearer $API_TOKEN` when the worker has API_TOKEN set."""
    links: Mapping[int, Mapping[str, Link]] = field(default_factory=dict)
    description: str = ""
    operation_id: str = ""


def operation(
    summary: str,
    *,
    tag: str,
    answers: tuple[Answer, ...],
    body: type[BaseModel] | None = None,
    params: tuple[Param, ...] = (),
    secured: bool = False,
    links: Mapping[int, Mapping[str, Link]] | None = None,
    operation_id: str = "",
) -> Callable[[F], F]:
    """Declare a view method's contract; its docstring becomes the description."""

    def declare(handler: F) -> F:
        handler.__openapi__ = Operation(  # type: ignore[attr-defined]
            summary=summary,
            tag=tag,
            answers=answers,
            body=body,
            params=params,
            secured=secured,
            links=links or {},
            description=inspect.getdoc(handler) or "",
            operation_id=operation_id or handler.__qualname__.split(".")[0],
        )
        return handler

    return declare


def declared(handler: Any) -> Operation | None:
    found = getattr(handler, "__openapi__", None)
    return found if isinstance(found, Operation) else None


# --- the pieces most operations share ----------------------------------------------

ID_SCHEMA = {"type": "string", "pattern": ID_PATTERN}


def path_id(name: str, what: str) -> Param:
    return Param(name, "path", ID_SCHEMA, f"{what}: 1-64 letters, digits, . _ : -", True)


def counted(name: str, low: int, high: int, default: int, description: str) -> Param:
    schema = {"type": "integer", "minimum": low, "maximum": high, "default": default}
    return Param(name, "query", schema, description)


IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "pattern": r"^[\x21-\x7e]{1,128}$"},
    "Makes a retry safe: the same key with the same request gets the first answer, "
    "and nothing is applied twice; the same key with another request gets 422.",
)
IF_MATCH = Param(
    "If-Match",
    "header",
    {"type": "string", "pattern": r'^"?[0-9]{1,12}"?$'},
    "The aggregate version the client decided on (optimistic concurrency): 409 "
    "`version_conflict` if the aggregate has moved on. Overrides `expected_version`.",
)
MIN_VERSION = Param(
    "min_version",
    "query",
    {"type": "integer", "minimum": 0, "maximum": 999_999_999_999},
    "Read your own write: wait (up to MIN_VERSION_WAIT) until the read model reflects "
    "this version, else 503 `behind`.",
)

MAX_STANDBY_LAG = Param(
    "max_standby_lag",
    "query",
    {"type": "integer", "minimum": 0, "maximum": 999_999_999_999},
    "When the key's owner cannot answer (a worker down, its partitions changing hands), "
    "answer from this worker's warm standby of the partition if it trails the log's end "
    "by at most this many records (the `Shop-Standby-Lag` header says it did); unset: "
    "503 `not_ready` instead.",
)

RETRY_AFTER = "Retry-After"
STANDBY_LAG = "Shop-Standby-Lag"
HEADERS: dict[str, dict[str, Any]] = {
    RETRY_AFTER: {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    STANDBY_LAG: {
        "description": "Answered from a warm standby (`max_standby_lag`), which trailed the "
        "log's end by this many records.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}},
}

INVALID = Answer(422, "A field, parameter or header is invalid: `fields` lists each one.")
NOT_READY = Answer(
    503,
    "`not_ready`: this worker is recovering, or the key's owner is not reachable yet; "
    "`behind`: the read model has not reached `min_version` in time. Retry.",
    headers=(RETRY_AFTER,),
)
NOT_FOUND = Answer(404, "No such resource (`not_found`).")


def command_answers(
    accepted: int, *extra: Answer, rejections: tuple[int, ...]
) -> tuple[Answer, ...]:
    """What a command endpoint answers: its outcome, recorded and replayed for a retry,
    or a refusal before anything is sent."""
    answers = [
        Answer(accepted, "Accepted: the events appended; the new version.", CommandAnswer),
        Answer(400, "`malformed_json`: the body is not a JSON object."),
        Answer(
            401,
            "`unauthorized`: API_TOKEN is set and no valid bearer token was sent.",
            headers=("WWW-Authenticate",),
        ),
        Answer(413, "`body_too_large`: over MAX_BODY_BYTES."),
        Answer(
            422,
            "`invalid_request`: a field, parameter or header is invalid (`fields`); "
            "`idempotency_key_reused`: the key was used with another request; or the "
            "domain refused the command as invalid.",
            (ErrorBody, CommandAnswer),
        ),
        Answer(
            503,
            "`overloaded`: this worker is at capacity, nothing was sent. Retry. "
            "`stopping`: this worker is stopping, nothing was sent: send it to another "
            "worker (`Retry-After: 0`).",
            headers=(RETRY_AFTER,),
        ),
        Answer(
            504,
            "`command_timeout`: no answer in time; the command may still be applied. "
            "Retry with the same Idempotency-Key to get its result.",
            headers=(RETRY_AFTER,),
        ),
    ]
    meaning = {
        404: "Rejected: the aggregate does not exist (`not_found`).",
        409: "Rejected: a business rule (`rule_violated`, `already_exists`) or "
        "`version_conflict`; the facts are in `details`.",
    }
    answers += [Answer(status, meaning[status], CommandAnswer) for status in rejections]
    by_status = {a.status: a for a in answers}
    by_status.update((a.status, a) for a in extra)
    return tuple(sorted(by_status.values(), key=lambda a: a.status))


def read_answers(ok: Answer, *extra: Answer, standby: bool = False) -> tuple[Answer, ...]:
    """What a read routed to the key's owner answers (`standby`: one that may be answered
    from a warm standby, MAX_STANDBY_LAG)."""
    if standby:
        ok = replace(ok, headers=(*ok.headers, STANDBY_LAG))
    by_status = {a.status: a for a in (ok, INVALID, NOT_READY, *extra)}
    return tuple(sorted(by_status.values(), key=lambda a: a.status))
