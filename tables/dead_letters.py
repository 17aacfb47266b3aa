"""The dead letters by id, with their status: a fold of the dead-letter topic.

The topic carries two kinds of message: a dead letter (kept once, under its
id) and a request to re-drive one. A request for a letter still "dead" sends
its original key and bytes back to its source topic (an output: acked before
the fold's offset passes the request) and marks it "redriven" at the
request's own timestamp, so folding the topic again gives the same rows. A
batch folded again after a crash may send a re-drive twice; every handler is
idempotent, so the second changes nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from models.dead_letters import DeadLetter, Redrive
from tables.read_models import Folded, LogRecord, Output, Stored


class DeadLetterBook:
    name = "dead-letters"
    events: tuple[str, ...] = ("deadletters",)

    def fold(self, records: Sequence[LogRecord], stored: Stored) -> Folded:
        folded = Folded()
        for record in records:
            try:
                raw = record.value or b""
                if b'"redrive"' in raw[:20]:
                    _redrive(folded, stored, Redrive.model_validate_json(raw).redrive, record)
                else:
                    letter = DeadLetter.model_validate_json(raw)
                    if folded.current(letter.id.encode(), stored) is None:
                        folded.rows[letter.id.encode()] = letter.model_dump_json().encode()
            except Exception as error:  # buried: a new, well-formed letter about this one
                folded.failures.append((record, error))
        return folded


def _redrive(folded: Folded, stored: Stored, letter_id: str, request: LogRecord) -> None:
    raw = folded.current(letter_id.encode(), stored)
    if raw is None:
        return
    letter = DeadLetter.model_validate_json(raw)
    if letter.status != "dead":
        return
    folded.outputs.append(Output(letter.source_topic, _bytes(letter.key), _bytes(letter.value)))
    at = datetime.fromtimestamp(request.timestamp / 1000, UTC)
    redriven = letter.model_copy(update={"status": "redriven", "redriven_at": at})
    folded.rows[letter_id.encode()] = redriven.model_dump_json().encode()


def _bytes(b64: str | None) -> bytes | None:
    return None if b64 is None else base64.b64decode(b64)


def letter(store: Stored, letter_id: str) -> dict[str, Any] | None:
    raw = store.get(letter_id.encode())
    return None if raw is None else dict(json.loads(raw))


def letters(store: Stored, after: str | None = None) -> Iterator[dict[str, Any]]:
    """Every dead letter in id order, from the first id past `after`."""
    start = None if after is None else after.encode()
    for key, raw in store.with_prefix(b"", after=start):
        if not key.startswith(b"\x00"):  # the store's own offsets
            yield json.loads(raw)
