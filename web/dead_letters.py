"""Dead-letter endpoints: list (paged, filtered) and re-drive once the cause is fixed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from faust.web import Request, Response, View

from agents.engine import key_in_partition
from agents.redrives import dead_letter_book, redrive
from app.main import app
from models.dead_letters import DeadLetter
from tables.dead_letters import letter, letters
from tables.owners import owners
from tables.partition_store import PartitionStore
from web.answers import DeadLettersPage
from web.http import (
    HttpError,
    counted_param,
    handles_errors,
    owner_route,
    require_token,
    store_of,
)
from web.operations import (
    NOT_READY,
    Answer,
    Link,
    Param,
    counted,
    operation,
    read_answers,
)

TEXT = {"type": "string"}
LETTER_ID = Param(
    "letter_id",
    "path",
    {"type": "string", "minLength": 1},
    "The dead letter's id, `topic:partition:offset:agent`.",
    True,
)

HOME = key_in_partition(0)
"""Routes a request to the worker that folds the dead letters (partition 0 of the orders)."""
routed = owners
_redriving: set[str] = set()


def book() -> PartitionStore:
    return store_of(dead_letter_book, HOME)


def _page(
    topic: str | None, error: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    page = []
    for row in letters(book(), after=after):
        if topic and row["source_topic"] != topic:
            continue
        if error and error.lower() not in (row["error_type"] + " " + row["error"]).lower():
            continue
        page.append(row)
        if len(page) >= limit:
            break
    return page


@app.page("/ops/dead-letters")
class DeadLettersView(View):
    @operation(
        "Dead letters",
        tag="operations",
        params=(
            Param("topic", "query", TEXT, "Only those from this source topic."),
            Param("error", "query", TEXT, "Only those whose error contains this text."),
            counted("limit", 1, 1000, 100, "Letters per page."),
            Param("after", "query", TEXT, "The `next_after` of the page before."),
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
        """Messages an agent could not process, with the cause, in id order."""
        limit = counted_param(request, "limit", 100, 1, 1000)
        page = _page(
            request.query.get("topic"),
            request.query.get("error"),
            request.query.get("after"),
            limit,
        )
        next_after = page[-1]["id"] if len(page) == limit else None
        return self.json({"dead_letters": page, "next_after": next_after})


@app.page("/ops/dead-letters/{letter_id}/retry")
class RedriveView(View):
    @operation(
        "Re-drive a dead letter",
        tag="operations",
        params=(LETTER_ID,),
        secured=True,
        answers=(
            Answer(200, "Re-driven: the letter, now `redriven`.", DeadLetter),
            Answer(
                401,
                "`unauthorized`: API_TOKEN is set and no valid bearer token was sent.",
                headers=("WWW-Authenticate",),
            ),
            Answer(404, "No such dead letter (`not_found`)."),
            Answer(409, "`already_redriven`."),
            NOT_READY,
            Answer(504, "`redrive_pending`: sent; not folded back yet."),
        ),
    )
    @handles_errors
    @owner_route(routed, exact=HOME)
    async def post(self, request: Request, letter_id: str) -> Response:
        """Send the dead letter's original bytes back to its source topic, once."""
        require_token(request)
        row = letter(book(), letter_id)
        if row is None:
            raise HttpError(404, "not_found", f"no dead letter {letter_id}")
        if row["status"] != "dead" or letter_id in _redriving:
            raise HttpError(
                409, "already_redriven", f"{letter_id} was re-driven already", dead_letter=row
            )
        _redriving.add(letter_id)  # every request for it is served here: one send at a time
        try:
            await redrive(DeadLetter.model_validate(row))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                row = letter(book(), letter_id)
                if row is not None and row["status"] == "redriven":
                    return self.json(row)
                await asyncio.sleep(0.05)
        finally:
            _redriving.discard(letter_id)
        raise HttpError(504, "redrive_pending", "re-driven; its record is not folded yet")
