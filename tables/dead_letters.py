"""The dead letters by id, with their status: a fold of the dead-letter topic.

The topic carries two kinds of record: a dead letter (kept once, under its id)
and a `Redrive` record, appended by the re-drive endpoint once it has sent the
letter's bytes back to their source topic (agents/redrives.py). The fold marks
the letter "redriven" at that record's own timestamp. The fold sends nothing:
the side effect happened once, before its record, so a store refolded from
offset 0 (an empty data dir, `shop rebuild`) never sends a letter again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from models.dead_letters import DeadLetter, Redrive
from tables.read_models import Folded, LogRecord, Stored


class DeadLetterBook:
    name = "dead-letters"
    events: tuple[str, ...] = ("deadletters",)

    def fold(self, records: Sequence[LogRecord], stored: Stored) -> Folded:
        folded = Folded()
        for record in records:
            try:
                raw = record.value or b""
                if b'"redrive"' in raw[:20]:
                    _redriven(folded, stored, Redrive.model_validate_json(raw).redrive, record)
                else:
                    letter = DeadLetter.model_validate_json(raw)
                    if folded.current(letter.id.encode(), stored) is None:
                        folded.rows[letter.id.encode()] = letter.model_dump_json().encode()
            except Exception as error:  # buried: a new, well-formed letter about this one
                folded.failures.append((record, error))
        return folded


def _redriven(folded: Folded, stored: Stored, letter_id: str, record: LogRecord) -> None:
    raw = folded.current(letter_id.encode(), stored)
    if raw is None:
        return
    letter = DeadLetter.model_validate_json(raw)
    if letter.status == "dead":
        at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
        redriven = letter.model_copy(update={"status": "redriven", "redriven_at": at})
        folded.rows[letter_id.encode()] = redriven.model_dump_json().encode()


def letter(store: Stored, letter_id: str) -> dict[str, Any] | None:
    raw = store.get(letter_id.encode())
    return None if raw is None else dict(json.loads(raw))


def open_letters(store: Stored) -> int:
    """How many letters are still "dead" (not re-driven)."""
    return sum(1 for row in letters(store) if row["status"] == "dead")


def letters(store: Stored, after: str | None = None) -> Iterator[dict[str, Any]]:
    """Every dead letter in id order, from the first id past `after`."""
    start = None if after is None else after.encode()
    for key, raw in store.with_prefix(b"", after=start):
        if not key.startswith(b"\x00"):  # the store's own offsets
            yield json.loads(raw)
