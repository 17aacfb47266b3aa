"""Dead-letter endpoints: list (paged, filtered), re-drive one or every letter a filter
matches (with a dry run that counts them first), resolve or discard one with a reason.

Every one is served where the dead letters are folded (partition 0 of the orders),
which is also where their state changes are sent from: `_in_hand` holds the letters
whose re-drive or resolution is under way there, so two requests never act on one
letter at once. Requests are forwarded there without a body, so every parameter is
in the query string.

A bulk retry is bounded by `through`, an offset of the dead-letter topic: it takes
only the letters recorded below it. A dry run answers the book's position as
`through` with the ids it would retry; the real run given that `through` and the
same filter retries exactly those, less any re-driven, resolved or discarded since
(a letter that fails again comes back under a new id, past the bound). The query
parameters and their checks are in web/dead_letter_params.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.web import Request, Response, View

from agents.engine import key_in_partition
from agents.redrives import close, dead_letter_book, redrive
from app.main import app
from app.settings import settings
from app.topics import dead_letter_topic
from models.dead_letters import MAX_REASON, Closing, DeadLetter
from models.ids import MAX_VERSION
from tables.dead_letters import letter, matching, retryable
from tables.owners import owners
from tables.partition_store import PartitionStore
from web.answers import BulkRetry, DeadLettersPage
from web.dead_letter_params import (
    FILTERS,
    STATUSES,
    flag,
    invalid,
    letter_filter,
    text,
    text_schema,
)
from web.http import (
    HttpError,
    counted_param,
    handles_errors,
    int_param,
    owner_route,
    require_token,
    store_of,
)
from web.operations import (
    INVALID,
    NOT_READY,
    Answer,
    Link,
    Param,
    counted,
    operation,
    read_answers,
)

MAX_BULK = 10_000
"""The most letters one bulk request re-drives (a client repeats with the same `through`)."""
FOLD_WAIT = 10.0
"""Seconds a change waits for the fold to show it before answering 504 `pending`."""
LETTER_ID = Param(
    "letter_id",
    "path",
    {"type": "string", "pattern": "^[\\x21-\\x7e]{1,512}$"},
    "The dead letter's id, `topic:partition:offset:agent`.",
    True,
)
REASON = Param(
    "reason",
    "query",
    {"type": "string", "minLength": 1, "maxLength": MAX_REASON},
    "Why: kept on the letter.",
    True,
)
UNAUTHORIZED = Answer(
    401,
    "`unauthorized`: API_TOKEN is set and no valid bearer token was sent.",
    headers=("WWW-Authenticate",),
)
REDRIVE_PENDING = Answer(504, "`redrive_pending`: sent; not folded back yet.")

HOME = key_in_partition(0)
"""Routes a request to the worker that folds the dead letters (partition 0 of the orders)."""
routed = owners
_in_hand: dict[str, str] = {}
"""Letter id -> the change under way for it on this worker (`redrive`, `resolve`...)."""


def book() -> PartitionStore:
    return store_of(dead_letter_book, HOME)


def book_position() -> int:
    """The next offset of the dead-letter topic the book will fold."""
    return book().offset(dead_letter_topic.get_topic_name())


def _refused(row: dict[str, Any]) -> HttpError | None:
    """Why the letter cannot change now, if it cannot: only a dead letter, and not one
    whose change is under way, can be re-driven, resolved or discarded."""
    letter_id = row["id"]
    if letter_id in _in_hand:
        return HttpError(
            409,
            "in_progress",
            f"{letter_id}: a {_in_hand[letter_id]} of it is under way",
            dead_letter=row,
        )
    if row["status"] == "redriven":
        return HttpError(
            409, "already_redriven", f"{letter_id} was re-driven already", dead_letter=row
        )
    if row["status"] != "dead":
        return HttpError(
            409,
            "closed",
            f"{letter_id} was {row['status']}: {row.get('close_reason')}",
            dead_letter=row,
        )
    return None


@contextmanager
def in_hand(letter_ids: list[str], change: str) -> Iterator[None]:
    _in_hand.update((letter_id, change) for letter_id in letter_ids)
    try:
        yield
    finally:
        for letter_id in letter_ids:
            _in_hand.pop(letter_id, None)


async def folded_past(offset: int, pending: str = "redrive_pending") -> None:
    """Once the book has folded the record at `offset`; 504 `pending` after FOLD_WAIT."""
    deadline = time.monotonic() + FOLD_WAIT
    while book_position() <= offset:
        if time.monotonic() >= deadline:
            raise HttpError(504, pending, "sent; its record is not folded yet: look again")
        await asyncio.sleep(0.05)


async def reached(through: int) -> None:
    """Once the book holds every letter below `through` (up to MIN_VERSION_WAIT), else 503
    `behind`: a bound past what it folded would miss letters the dry run counted."""
    deadline = time.monotonic() + settings.min_version_wait
    while (position := book_position()) < through:
        if time.monotonic() >= deadline:
            error = HttpError(
                503,
                "behind",
                f"the dead letters are folded up to {position}, not yet {through}",
                position=position,
                through=through,
            )
            error.headers["Retry-After"] = "1"
            raise error
        await asyncio.sleep(0.02)


@app.page("/ops/dead-letters")
class DeadLettersView(View):
    @operation(
        "Dead letters",
        tag="operations",
        params=(
            *FILTERS,
            Param(
                "status",
                "query",
                {"type": "string", "enum": list(STATUSES)},
                "Only those in this state.",
            ),
            counted("limit", 1, 1000, 100, "Letters per page."),
            Param("after", "query", text_schema("after"), "The `next_after` of the page before."),
        ),
        answers=read_answers(Answer(200, "A page of dead letters, by id.", DeadLettersPage)),
        links={
            200: {
                "Redrive": Link(
                    "RedriveView",
                    {"letter_id": "$response.body#/dead_letters/0/id"},
                    "Re-drive the first letter of the page",
                )
            }
        },
    )
    @handles_errors
    @owner_route(routed, exact=HOME)
    async def get(self, request: Request) -> Response:
        """Messages an agent could not process, with the cause and their state (and the
        reason of a resolved or discarded one), in id order."""
        limit = counted_param(request, "limit", 100, 1, 1000)
        which = letter_filter(request, with_status=True)
        page = []
        for row in matching(book(), which, after=text(request, "after")):
            page.append(row)
            if len(page) >= limit:
                break
        next_after = page[-1]["id"] if len(page) == limit else None
        return self.json({"dead_letters": page, "next_after": next_after})


@app.page("/ops/dead-letters/retry")
class BulkRedriveView(View):
    @operation(
        "Re-drive every dead letter a filter matches",
        tag="operations",
        params=(
            *FILTERS,
            Param(
                "dry_run",
                "query",
                {"type": "boolean", "default": False},
                "Count and list what would be re-driven; send nothing.",
            ),
            Param(
                "through",
                "query",
                {"type": "integer", "minimum": 0, "maximum": MAX_VERSION},
                "Only letters recorded below this offset of the dead-letter topic: a dry "
                "run's `through`, so the run re-drives what the dry run counted. Omitted: "
                "the letters folded now.",
            ),
            counted("limit", 1, MAX_BULK, 1000, "At most this many re-driven by this request."),
        ),
        secured=True,
        answers=(
            Answer(200, "What was (or, on a dry run, would be) re-driven.", BulkRetry),
            UNAUTHORIZED,
            INVALID,
            Answer(
                503,
                "`not_ready`: this worker is recovering or the letters' owner is not "
                "reachable yet; `behind`: the letters are not folded up to `through` yet.",
                headers=("Retry-After",),
            ),
            REDRIVE_PENDING,
        ),
    )
    @handles_errors
    @owner_route(routed, exact=HOME)
    async def post(self, request: Request) -> Response:
        """Send the original bytes of every dead letter the filter matches back to their
        source topics, once each, in the order they were dead-lettered. Resolved,
        discarded and re-driven letters are never taken."""
        require_token(request)
        which = letter_filter(request)
        dry_run = flag(request, "dry_run")
        limit = counted_param(request, "limit", 1000, 1, MAX_BULK)
        through = int_param(request, "through", None, 0, MAX_VERSION)
        if through is None:
            through = book_position()
        else:
            await reached(through)
        rows = [row for row in retryable(book(), which, through) if row["id"] not in _in_hand]
        taken = rows[:limit]
        ids = [row["id"] for row in taken]
        if taken and not dry_run:
            with in_hand(ids, "redrive"):
                last = await redrive([DeadLetter.model_validate(row) for row in taken])
                await folded_past(last)
        return self.json(
            {
                "dry_run": dry_run,
                "through": through,
                "matched": len(rows),
                "ids": ids,
                "remaining": len(rows) - len(taken),
            }
        )


@app.page("/ops/dead-letters/{letter_id}/retry")
class RedriveView(View):
    @operation(
        "Re-drive a dead letter",
        tag="operations",
        params=(LETTER_ID,),
        secured=True,
        answers=(
            Answer(200, "Re-driven: the letter, now `redriven`.", DeadLetter),
            UNAUTHORIZED,
            Answer(404, "No such dead letter (`not_found`)."),
            Answer(
                409,
                "`already_redriven`; `closed`: resolved or discarded; `in_progress`: a "
                "change of it is under way.",
            ),
            NOT_READY,
            REDRIVE_PENDING,
        ),
    )
    @handles_errors
    @owner_route(routed, exact=HOME)
    async def post(self, request: Request, letter_id: str) -> Response:
        """Send the dead letter's original bytes back to its source topic, once."""
        require_token(request)
        row = _dead_letter(letter_id)
        with in_hand([letter_id], "redrive"):
            await folded_past(await redrive([DeadLetter.model_validate(row)]))
        return self.json(letter(book(), letter_id))


def _dead_letter(letter_id: str) -> dict[str, Any]:
    """The letter, if it is dead and nothing is under way for it; else 404 or 409."""
    row = letter(book(), letter_id)
    if row is None:
        raise HttpError(404, "not_found", f"no dead letter {letter_id}")
    refused = _refused(row)
    if refused is not None:
        raise refused
    return row


async def _close(view: View, request: Request, letter_id: str, state: Closing) -> Response:
    require_token(request)
    reason = (request.query.get("reason") or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise invalid("reason", f"1-{MAX_REASON} characters, not only spaces")
    _dead_letter(letter_id)
    with in_hand([letter_id], "resolution"):
        await folded_past(await close(letter_id, state, reason), "resolution_pending")
    row = letter(book(), letter_id)
    if row is None or row["status"] != state:  # re-driven meanwhile by another worker
        raise HttpError(409, "already_redriven", f"{letter_id} was re-driven", dead_letter=row)
    return view.json(row)


def _close_answers(state: str) -> tuple[Answer, ...]:
    return (
        Answer(200, f"The letter, now `{state}`, with the reason.", DeadLetter),
        UNAUTHORIZED,
        Answer(404, "No such dead letter (`not_found`)."),
        Answer(
            409,
            "Not dead: `already_redriven`, `closed` (resolved or discarded already); or "
            "`in_progress`: a change of it is under way.",
        ),
        INVALID,
        NOT_READY,
        Answer(504, "`resolution_pending`: recorded; not folded back yet."),
    )


@app.page("/ops/dead-letters/{letter_id}/resolve")
class ResolveView(View):
    @operation(
        "Mark a dead letter resolved",
        tag="operations",
        params=(LETTER_ID, REASON),
        secured=True,
        answers=_close_answers("resolved"),
    )
    @handles_errors
    @owner_route(routed, exact=HOME)
    async def post(self, request: Request, letter_id: str) -> Response:
        """The cause was dealt with another way: the letter is kept, with the reason, and
        never re-driven (a refold from an empty disk keeps it so)."""
        return await _close(self, request, letter_id, "resolved")


@app.page("/ops/dead-letters/{letter_id}/discard")
class DiscardView(View):
    @operation(
        "Discard a dead letter",
        tag="operations",
        params=(LETTER_ID, REASON),
        secured=True,
        answers=_close_answers("discarded"),
    )
    @handles_errors
    @owner_route(routed, exact=HOME)
    async def post(self, request: Request, letter_id: str) -> Response:
        """The message is not to be processed, ever: the letter is kept, with the reason,
        and never re-driven (a refold from an empty disk keeps it so)."""
        return await _close(self, request, letter_id, "discarded")
