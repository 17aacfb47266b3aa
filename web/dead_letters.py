"""Dead-letter endpoints: list (paged, filtered) and re-drive once the cause is fixed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from faust.web import Request, Response, View

from agents.folds import key_in_partition
from agents.redrives import dead_letter_book, redrive
from app.main import app
from models.dead_letters import DeadLetter
from tables.dead_letters import letter, letters
from tables.owners import owners
from tables.partition_store import PartitionStore
from web.http import HttpError, handles_errors, owner_route, require_token, store_of

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
    @handles_errors
    @owner_route(routed, exact=HOME)
    async def get(self, request: Request) -> Response:
        """?topic=<source topic>&error=<substring>&limit=&after=<id>"""
        raw_limit = request.query.get("limit", "100")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
            raise HttpError(
                422,
                "invalid_request",
                "invalid fields: limit",
                fields=[{"field": "limit", "reason": "an integer from 1 to 1000"}],
            )
        limit = int(raw_limit)
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
