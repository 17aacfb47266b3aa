"""The dead letters kept by id, and their re-drives: one batched fold of the
one-partition dead-letter topic (tables/dead_letters.py), run where partition 0
of the order commands is decided."""

from __future__ import annotations

import base64

from agents.folds import FoldRunner
from app.main import app
from app.topics import dead_letter_topic
from models.dead_letters import DeadLetter, Redrive
from tables.dead_letters import DeadLetterBook

dead_letter_book = FoldRunner(DeadLetterBook(), single=True)
app.service(dead_letter_book)  # type: ignore[arg-type]


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
