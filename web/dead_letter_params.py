"""The dead-letter endpoints' query parameters (web/dead_letters.py): which letters a
request means (`letter_filter`, a `LetterFilter`), each parameter checked against the
form the OpenAPI document states for it, and a 422 naming the one that is not.

Every parameter is in the query string: the endpoints are forwarded to the letters'
owner without a body. The text ones are bounded, so the longest query a client can
send stays under the server's 8190-byte request line.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, cast, get_args

from faust.web import Request

from models.dead_letters import LetterStatus
from tables.dead_letters import LetterFilter
from web.http import HttpError
from web.operations import Param

TEXTS: dict[str, tuple[str, str]] = {
    "topic": (r"[\x21-\x7e]{1,249}", "1-249 printable ASCII characters (a topic's name)"),
    "agent": (r"[A-Za-z0-9_.-]{1,64}", "1-64 letters, digits, _ . -"),
    "error_type": (r"[A-Za-z0-9_.]{1,128}", "1-128 letters, digits, _ ."),
    "error": (r"(?s:.{1,200})", "1-200 characters"),
    "after": (r"[\x21-\x7e]{1,512}", "1-512 printable ASCII characters (a letter's id)"),
}
"""Each text parameter's form, and the reason a value out of it is refused."""
_TEXTS = {name: re.compile(pattern) for name, (pattern, _) in TEXTS.items()}
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
"""RFC 3339's date-time (pydantic alone would take "0.5" as a Unix time)."""
STATUSES: tuple[LetterStatus, ...] = get_args(LetterStatus)

TIME = {"type": "string", "format": "date-time"}


def text_schema(name: str) -> dict[str, Any]:
    if name == "error":
        return {"type": "string", "minLength": 1, "maxLength": 200}
    return {"type": "string", "pattern": f"^{TEXTS[name][0]}$"}


FILTERS = (
    Param("topic", "query", text_schema("topic"), "Only those from this source topic (its name)."),
    Param("agent", "query", text_schema("agent"), "Only those this reader failed on."),
    Param(
        "error_type", "query", text_schema("error_type"), "Only those whose error is of this type."
    ),
    Param(
        "error",
        "query",
        text_schema("error"),
        "Only those whose error type or message contains this text, ignoring case.",
    ),
    Param("failed_after", "query", TIME, "Only those dead-lettered at or after this time."),
    Param("failed_before", "query", TIME, "Only those dead-lettered before this time."),
)


def invalid(name: str, reason: str) -> HttpError:
    return HttpError(
        422,
        "invalid_request",
        f"invalid fields: {name}",
        fields=[{"field": name, "reason": reason}],
    )


def text(request: Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is not None and not _TEXTS[name].fullmatch(value):
        raise invalid(name, TEXTS[name][1])
    return value


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        if not _DATE_TIME.fullmatch(raw):
            raise ValueError(raw)
        return datetime.fromisoformat(raw.upper())
    except ValueError:
        raise invalid(name, "an RFC 3339 date-time with its zone (2026-03-01T12:00:00Z)") from None


def flag(request: Request, name: str) -> bool:
    raw = request.query.get(name, "false")
    if raw not in ("true", "false"):
        raise invalid(name, "true or false")
    return raw == "true"


def letter_filter(request: Request, *, with_status: bool = False) -> LetterFilter:
    """The filter the query string asks for; 422 naming a parameter that is invalid."""
    status = request.query.get("status") if with_status else None
    if status is not None and status not in STATUSES:
        raise invalid("status", f"one of {', '.join(STATUSES)}")
    after, before = _time(request, "failed_after"), _time(request, "failed_before")
    if after is not None and before is not None and before <= after:
        raise invalid("failed_before", "must be later than failed_after")
    return LetterFilter(
        topic=text(request, "topic"),
        agent=text(request, "agent"),
        error_type=text(request, "error_type"),
        error=text(request, "error"),
        failed_after=after,
        failed_before=before,
        status=cast(LetterStatus | None, status),  # checked against STATUSES above
    )
