"""The dead letters' fold: each letter kept once; a re-drive's record marks it redriven
at the record's own time; the fold sends nothing, so a refold never re-drives."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

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


def test_a_letter_is_kept_once_and_marked_by_its_redrive_record() -> None:
    first = "accounts.events:0:7:accounts-projection"
    store = Rows()
    book = DeadLetterBook()
    store.apply(book.fold([Record(0, dead(7)), Record(1, dead(8)), Record(2, dead(7))], store))
    assert [row["offset"] for row in letters(store)] == [7, 8]

    marked = [Record(3, redrive(first), timestamp=ASKED), Record(4, redrive(first))]
    folded = book.fold([*marked, Record(5, redrive("no-such-letter"))], store)

    assert folded.outputs == [] and folded.failures == []
    store.apply(folded)
    row = letter(store, first)
    assert row is not None and row["status"] == "redriven"
    at = datetime.fromisoformat(row["redriven_at"].replace("Z", "+00:00"))
    assert at == datetime.fromtimestamp(ASKED / 1000, UTC)  # the first record's time
    other = letter(store, "accounts.events:0:8:accounts-projection")
    assert other is not None and other["status"] == "dead"


def test_the_topic_folded_again_gives_the_same_rows() -> None:
    batch = [Record(0, dead(1)), Record(1, redrive("accounts.events:0:1:accounts-projection"))]
    once, twice = DeadLetterBook().fold(batch, Rows()), DeadLetterBook().fold(batch, Rows())
    assert once.rows == twice.rows and once.outputs == twice.outputs == []


def test_what_is_not_a_dead_letter_is_a_failure_not_a_row() -> None:
    folded = DeadLetterBook().fold([Record(0, b"{nope"), Record(1, dead(2))], Rows())
    assert [r.offset for r, _ in folded.failures] == [0]
    assert [json.loads(v or b"")["offset"] for v in folded.rows.values()] == [2]
