"""The dead letters kept by id, their re-drives and their resolutions: one batched fold
of the one-partition dead-letter topic (tables/dead_letters.py), run where partition 0
of the order commands is decided."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Sequence
from typing import Any

from agents.folds import FoldRunner
from app.main import app
from app.metrics import DEAD_LETTERS_OPEN
from app.topics import dead_letter_topic
from models.dead_letters import Closing, DeadLetter, Redrive, Resolution
from tables.dead_letters import DeadLetterBook, open_letters

dead_letter_book = FoldRunner(DeadLetterBook(), single=True)
app.service(dead_letter_book)  # type: ignore[arg-type]


_counted = [0]
"""The last count: a store closed by a rebalance mid-count keeps it."""


def open_dead_letters() -> int:
    """Dead letters still open (not re-driven, resolved or discarded), counted where the
    book is kept (0 elsewhere)."""
    store = dead_letter_book.stores.get(0)
    if store is None or 0 not in dead_letter_book.reading:
        return 0
    with contextlib.suppress(Exception):  # a scrape must not fail on a store being closed
        _counted[0] = open_letters(store)
    return _counted[0]


DEAD_LETTERS_OPEN.set_function(open_dead_letters)


async def redrive(letters: Sequence[DeadLetter]) -> int:
    """Send each letter's original key and bytes back to its source topic, then record
    on the dead-letter topic that it was (the fold marks it "redriven"); the offset of
    the last record, so a caller can wait for the fold to pass it. Every send goes out
    at once and is acknowledged before any record is appended: a crash between the two
    leaves letters "dead", a retry sends them again, and every handler is idempotent.
    The fold itself never sends, so a refold never re-drives."""
    sources: dict[str, Any] = {}
    sent = []
    for letter in letters:
        if letter.source_topic not in sources:
            sources[letter.source_topic] = app.topic(
                letter.source_topic, key_serializer="raw", value_serializer="raw"
            )
        key = None if letter.key is None else base64.b64decode(letter.key)
        value = None if letter.value is None else base64.b64decode(letter.value)
        sent.append(await sources[letter.source_topic].send(key=key, value=value))
    await asyncio.gather(*sent)
    records = [
        await dead_letter_topic.send(
            key=letter.id, value=Redrive(redrive=letter.id).model_dump_json().encode()
        )
        for letter in letters
    ]
    acknowledged = await asyncio.gather(*records)
    return max(metadata.offset for metadata in acknowledged)


async def close(letter_id: str, state: Closing, reason: str) -> int:
    """Record that the letter is resolved or discarded, with the reason; the record's
    offset on the dead-letter topic. Nothing else is sent: the fold marks the letter."""
    record = Resolution(resolve=letter_id, state=state, reason=reason)
    sent = await dead_letter_topic.send(key=letter_id, value=record.model_dump_json().encode())
    return int((await sent).offset)
