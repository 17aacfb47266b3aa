"""The dead letters' fold: each letter kept once, a re-drive sent once and recorded at
the request's own time, so the topic folded again gives the same rows."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import app  # noqa: F401 - the App first
from models.dead_letters import DeadLetter, Redrive
from tables.dead_letters import DeadLetterBook, letter, letters
from tests.unit.records import Record, Rows

FAILED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ASKED = 1_772_400_000_000


def dead(n: int) -> bytes:
    return (
        DeadLetter(
            id=f"accounts.events:0:{n}:accounts-projection",
            agent="accounts-projection",
            source_topic="accounts.events",
            partition=0,
            offset=n,
            key=base64.b64encode(b"acc-1").decode(),
            value=base64.b64encode(b"{oops").decode(),
            error_type="ValidationError",
            error="bad",
            traceback="",
            attempts=1,
            failed_at=FAILED,
        )
        .model_dump_json()
        .encode()
    )


def redrive(letter_id: str) -> bytes:
    return Redrive(redrive=letter_id).model_dump_json().encode()


def test_a_letter_is_kept_once_and_redriven_once() -> None:
    first = "accounts.events:0:7:accounts-projection"
    store = Rows()
    book = DeadLetterBook()
    batch = [Record(0, dead(7)), Record(1, dead(8)), Record(2, dead(7))]
    store.apply(book.fold(batch, store))
    assert [row["offset"] for row in letters(store)] == [7, 8]

    asked = [Record(3, redrive(first), timestamp=ASKED), Record(4, redrive(first))]
    folded = book.fold([*asked, Record(5, redrive("no-such-letter"))], store)

    assert [(o.topic, o.key, o.value) for o in folded.outputs] == [
        ("accounts.events", b"acc-1", b"{oops")
    ]
    store.apply(folded)
    row = letter(store, first)
    assert row is not None and row["status"] == "redriven"
    assert row["redriven_at"] == datetime.fromtimestamp(ASKED / 1000, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert book.fold([Record(6, redrive(first))], store).outputs == []  # once only


def test_the_same_batch_folded_again_gives_the_same_rows() -> None:
    batch = [Record(0, dead(1)), Record(1, redrive("accounts.events:0:1:accounts-projection"))]
    once, twice = DeadLetterBook().fold(batch, Rows()), DeadLetterBook().fold(batch, Rows())
    assert once.rows == twice.rows and once.outputs == twice.outputs


def test_what_is_not_a_dead_letter_is_a_failure_not_a_row() -> None:
    folded = DeadLetterBook().fold([Record(0, b"{nope"), Record(1, dead(2))], Rows())
    assert [r.offset for r, _ in folded.failures] == [0]
    assert [json.loads(v or b"")["offset"] for v in folded.rows.values()] == [2]
