"""The dead letters kept by id, and re-driven on request: one batched fold of the
one-partition dead-letter topic (tables/dead_letters.py), run where partition 0
of the order commands is decided."""

from __future__ import annotations

from agents.folds import FoldRunner
from app.main import app
from app.topics import dead_letter_topic, order_commands
from models.dead_letters import Redrive
from tables.dead_letters import DeadLetterBook

dead_letter_book = FoldRunner(DeadLetterBook(), follows=order_commands, single=True)
app.service(dead_letter_book)  # type: ignore[arg-type]


async def request_redrive(letter_id: str) -> None:
    """Ask the fold to send the letter's bytes back (on the topic: it re-drives once)."""
    request = Redrive(redrive=letter_id).model_dump_json().encode()
    await (await dead_letter_topic.send(key=letter_id, value=request))
