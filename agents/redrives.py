"""The dead letters kept by id, and their re-drives: one batched fold of the
one-partition dead-letter topic (tables/dead_letters.py), run where partition 0
of the order commands is decided."""

from __future__ import annotations

import base64
import contextlib

from agents.folds import FoldRunner
from app.main import app
from app.metrics import DEAD_LETTERS_OPEN
from app.topics import dead_letter_topic
from models.dead_letters import DeadLetter, Redrive
from tables.dead_letters import DeadLetterBook, open_letters

dead_letter_book = FoldRunner(DeadLetterBook(), single=True)
app.service(dead_letter_book)  # type: ignore[arg-type]


_counted = [0]
"""The last count: a store closed by a rebalance mid-count keeps it."""


def open_dead_letters() -> int:
    """Dead letters not re-driven yet, counted where the book is kept (0 elsewhere)."""
    store = dead_letter_book.stores.get(0)
    if store is None or 0 not in dead_letter_book.reading:
        return 0
    with contextlib.suppress(Exception):  # a scrape must not fail on a store being closed
        _counted[0] = open_letters(store)
    return _counted[0]


DEAD_LETTERS_OPEN.set_function(open_dead_letters)


async def redrive(letter: DeadLetter) -> None:
    """Send the letter's original key and bytes back to its source topic, then record
    on the dead-letter topic that it was (the fold marks it "redriven"). A crash
    between the two leaves it "dead": a retry sends it again, and every handler is
    idempotent. The fold itself never sends, so a refold never re-drives."""
    key = None if letter.key is None else base64.b64decode(letter.key)
    value = None if letter.value is None else base64.b64decode(letter.value)
    source = app.topic(letter.source_topic, key_serializer="raw", value_serializer="raw")
    await (await source.send(key=key, value=value))
    done = Redrive(redrive=letter.id).model_dump_json().encode()
    await (await dead_letter_topic.send(key=letter.id, value=done))
