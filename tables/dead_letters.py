"""The dead letters by id, with their status: a fold of the dead-letter topic.

The topic carries three kinds of record: a dead letter (kept once, under its id,
with its own offset on the topic as `sequence`); a `Redrive` record, appended by
a re-drive once it has sent the letter's bytes back to their source topic
(agents/redrives.py); and a `Resolution`, an operator's word that the letter is
resolved or discarded, with a reason. The fold marks the letter at that record's
own timestamp. A resolution closes only a dead letter (the first word wins); a
re-drive record marks any letter not marked redriven yet, since it records a send
that happened. The fold sends nothing: the side effect happened once, before its
record, so a store refolded from offset 0 (an empty data dir) never sends a letter
again, and keeps every resolution with its reason.

`LetterFilter` is the one notion of "which letters" that the listing and the bulk
retry share; `retryable` is what a bulk retry takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from models.dead_letters import DeadLetter, LetterStatus, Redrive, Resolution
from tables.read_models import Folded, LogRecord, Stored


class DeadLetterBook:
    name = "dead-letters"
    events: tuple[str, ...] = ("deadletters",)

    def fold(self, records: Sequence[LogRecord], stored: Stored) -> Folded:
        folded = Folded()
        for record in records:
            try:
                raw = record.value or b""
                head = raw[:20]
                if b'"redrive"' in head:
                    _redriven(folded, stored, Redrive.model_validate_json(raw).redrive, record)
                elif b'"resolve"' in head:
                    _closed(folded, stored, Resolution.model_validate_json(raw), record)
                else:
                    letter = DeadLetter.model_validate_json(raw)
                    if folded.current(letter.id.encode(), stored) is None:
                        kept = letter.model_copy(update={"sequence": record.offset})
                        folded.rows[letter.id.encode()] = kept.model_dump_json().encode()
            except Exception as error:  # buried: a new, well-formed letter about this one
                folded.failures.append((record, error))
        return folded


def _at(record: LogRecord) -> datetime:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


def _redriven(folded: Folded, stored: Stored, letter_id: str, record: LogRecord) -> None:
    raw = folded.current(letter_id.encode(), stored)
    if raw is None:
        return
    letter = DeadLetter.model_validate_json(raw)
    if letter.status != "redriven":
        redriven = letter.model_copy(update={"status": "redriven", "redriven_at": _at(record)})
        folded.rows[letter_id.encode()] = redriven.model_dump_json().encode()


def _closed(folded: Folded, stored: Stored, resolution: Resolution, record: LogRecord) -> None:
    raw = folded.current(resolution.resolve.encode(), stored)
    if raw is None:
        return
    letter = DeadLetter.model_validate_json(raw)
    if letter.status == "dead":
        closed = letter.model_copy(
            update={
                "status": resolution.state,
                "closed_at": _at(record),
                "close_reason": resolution.reason,
            }
        )
        folded.rows[resolution.resolve.encode()] = closed.model_dump_json().encode()


def letter(store: Stored, letter_id: str) -> dict[str, Any] | None:
    raw = store.get(letter_id.encode())
    return None if raw is None else dict(json.loads(raw))


def open_letters(store: Stored) -> int:
    """How many letters are still "dead" (not re-driven, resolved or discarded)."""
    return sum(1 for row in letters(store) if row["status"] == "dead")


def letters(store: Stored, after: str | None = None) -> Iterator[dict[str, Any]]:
    """Every dead letter in id order, from the first id past `after`."""
    start = None if after is None else after.encode()
    for key, raw in store.with_prefix(b"", after=start):
        if not key.startswith(b"\x00"):  # the store's own offsets
            yield json.loads(raw)


@dataclass(frozen=True)
class LetterFilter:
    """Which letters: every criterion given must hold (none given: every letter)."""

    topic: str | None = None
    """The source topic, its full name."""
    agent: str | None = None
    """The reader that failed on it (`accounts-projection`, `stock-service`, ...)."""
    error_type: str | None = None
    """The error's type name, exactly (`ValidationError`)."""
    error: str | None = None
    """Text in the error's type or message, ignoring case."""
    failed_after: datetime | None = None
    """Dead-lettered at or after this time."""
    failed_before: datetime | None = None
    """Dead-lettered before this time."""
    status: LetterStatus | None = None

    def matches(self, row: dict[str, Any]) -> bool:
        if self.topic is not None and row["source_topic"] != self.topic:
            return False
        if self.agent is not None and row["agent"] != self.agent:
            return False
        if self.error_type is not None and row["error_type"] != self.error_type:
            return False
        if self.status is not None and row["status"] != self.status:
            return False
        if self.error and self.error.lower() not in f"{row['error_type']} {row['error']}".lower():
            return False
        if self.failed_after is not None or self.failed_before is not None:
            failed = datetime.fromisoformat(row["failed_at"])
            if self.failed_after is not None and failed < self.failed_after:
                return False
            if self.failed_before is not None and failed >= self.failed_before:
                return False
        return True


def matching(
    store: Stored, which: LetterFilter, after: str | None = None
) -> Iterator[dict[str, Any]]:
    """The letters `which` matches, in id order, from the first id past `after`."""
    return (row for row in letters(store, after) if which.matches(row))


def retryable(store: Stored, which: LetterFilter, through: int) -> list[dict[str, Any]]:
    """The dead letters `which` matches that were on the topic below offset `through`, in
    the order they were dead-lettered: what a bulk retry bounded by `through` takes.
    Letters dead-lettered after (a retried one that failed again, under its new id) are
    past the bound; resolved, discarded and re-driven ones are not dead."""
    rows = [
        row
        for row in matching(store, which)
        if row["status"] == "dead" and _sequence(row) < through
    ]
    return sorted(rows, key=_sequence)


def _sequence(row: dict[str, Any]) -> int:
    """A row folded before letters carried their sequence counts as the earliest."""
    sequence = row.get("sequence")
    return -1 if sequence is None else int(sequence)
