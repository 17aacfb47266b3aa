"""The dead letters' fold: each letter kept once, with its place on the topic; a
re-drive's record marks it redriven and a resolution resolved or discarded with its
reason, at the record's own time; the fold sends nothing, so a refold never re-drives
and keeps every resolution. And which letters a filter, and a bulk retry, take."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.dead_letters import DeadLetter, Redrive, Resolution
from tables.dead_letters import DeadLetterBook, LetterFilter, letter, letters, retryable
from tests.unit.records import Record, Rows

FAILED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ASKED = 1_772_400_000_000


def dead(
    n: int,
    topic: str = "accounts.events",
    agent: str = "accounts-projection",
    error_type: str = "ValidationError",
    failed_at: datetime = FAILED,
) -> bytes:
    return (
        DeadLetter(
            id=f"{topic}:0:{n}:{agent}",
            agent=agent,
            source_topic=topic,
            partition=0,
            offset=n,
            key=base64.b64encode(b"acc-1").decode(),
            value=base64.b64encode(b"{oops").decode(),
            error_type=error_type,
            error="bad",
            traceback="",
            attempts=1,
            failed_at=failed_at,
        )
        .model_dump_json()
        .encode()
    )


def resolution(letter_id: str, state: str = "resolved", reason: str = "fixed by hand") -> bytes:
    return (
        Resolution.model_validate({"resolve": letter_id, "state": state, "reason": reason})
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


FIRST = "accounts.events:0:7:accounts-projection"
SECOND = "accounts.events:0:8:accounts-projection"


def folded(*records: Record) -> Rows:
    store = Rows()
    for record in records:  # one batch per record, as a slow topic is folded
        store.apply(DeadLetterBook().fold([record], store))
    return store


def test_a_letter_keeps_its_place_on_the_topic() -> None:
    store = folded(Record(3, dead(7)), Record(9, dead(8)), Record(11, dead(7)))
    assert [row["sequence"] for row in letters(store)] == [3, 9]  # the first copy's


def test_a_resolution_closes_a_dead_letter_with_its_reason() -> None:
    store = folded(
        Record(0, dead(7)),
        Record(1, dead(8)),
        Record(2, resolution(FIRST, "resolved", "refunded by hand"), timestamp=ASKED),
        Record(3, resolution(SECOND, "discarded", "test data")),
    )
    first, second = letter(store, FIRST), letter(store, SECOND)
    assert first is not None and second is not None
    assert (first["status"], first["close_reason"]) == ("resolved", "refunded by hand")
    assert datetime.fromisoformat(first["closed_at"]) == datetime.fromtimestamp(ASKED / 1000, UTC)
    assert (second["status"], second["close_reason"]) == ("discarded", "test data")


def test_the_first_word_on_a_letter_wins() -> None:
    store = folded(
        Record(0, dead(7)),
        Record(1, dead(8)),
        Record(2, resolution(FIRST, "resolved", "first")),
        Record(3, resolution(FIRST, "discarded", "second")),
        Record(4, redrive(SECOND)),
        Record(5, resolution(SECOND, "discarded", "too late")),
        Record(6, resolution("no-such-letter")),
    )
    first, second = letter(store, FIRST), letter(store, SECOND)
    assert first is not None and (first["status"], first["close_reason"]) == ("resolved", "first")
    assert second is not None and second["status"] == "redriven"
    assert second["close_reason"] is None


def test_a_redrive_record_marks_even_a_closed_letter_it_was_sent() -> None:
    # the record says the bytes went out: the book must not hide it behind a resolution
    store = folded(Record(0, dead(7)), Record(1, resolution(FIRST)), Record(2, redrive(FIRST)))
    row = letter(store, FIRST)
    assert row is not None and row["status"] == "redriven"
    assert row["close_reason"] == "fixed by hand"  # the resolution stays on the record


def test_a_refold_from_offset_0_keeps_every_resolution() -> None:
    log = [
        Record(0, dead(7)),
        Record(1, dead(8)),
        Record(2, resolution(FIRST, "discarded", "duplicate")),
        Record(3, redrive(SECOND)),
    ]
    one_by_one = folded(*log)
    all_at_once = Rows()
    all_at_once.apply(DeadLetterBook().fold(log, Rows()))
    assert dict(one_by_one) == dict(all_at_once)


def test_a_resolution_without_a_reason_is_a_failure_not_a_change() -> None:
    bad = b'{"resolve":"' + FIRST.encode() + b'","state":"resolved","reason":""}'
    store = folded(Record(0, dead(7)))
    result = DeadLetterBook().fold([Record(1, bad)], store)
    assert [r.offset for r, _ in result.failures] == [1] and result.rows == {}


def book_of_many() -> Rows:
    early, late = FAILED - timedelta(hours=1), FAILED + timedelta(hours=1)
    return folded(
        Record(10, dead(1, failed_at=early)),
        Record(11, dead(2, topic="orders.events", agent="saga", error_type="KeyError")),
        Record(12, dead(3, failed_at=late)),
        Record(13, dead(4, topic="orders.events", agent="orders-projection")),
        Record(14, resolution("accounts.events:0:3:accounts-projection")),
        Record(15, dead(5, error_type="UnknownSchemaVersion")),
    )


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [row["offset"] for row in rows]


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        (LetterFilter(), [1, 2, 3, 4, 5]),
        (LetterFilter(topic="orders.events"), [2, 4]),
        (LetterFilter(agent="saga"), [2]),
        (LetterFilter(error_type="ValidationError"), [1, 3, 4]),
        (LetterFilter(error="schemaversion"), [5]),
        (LetterFilter(failed_after=FAILED), [2, 3, 4, 5]),
        (LetterFilter(failed_before=FAILED), [1]),
        (LetterFilter(failed_after=FAILED, failed_before=FAILED + timedelta(minutes=1)), [2, 4, 5]),
        (LetterFilter(status="resolved"), [3]),
        (LetterFilter(topic="accounts.events", error_type="ValidationError"), [1, 3]),
    ],
)
def test_a_filter_takes_what_every_criterion_matches(
    which: LetterFilter, expected: list[int]
) -> None:
    matched = [row for row in letters(book_of_many()) if which.matches(row)]
    assert sorted(ids(matched)) == expected


def test_a_bulk_retry_takes_dead_letters_below_its_bound_in_their_order() -> None:
    store = book_of_many()
    everything = retryable(store, LetterFilter(), through=16)
    assert ids(everything) == [1, 2, 4, 5]  # 3 is resolved
    assert [row["sequence"] for row in everything] == [10, 11, 13, 15]
    assert ids(retryable(store, LetterFilter(), through=13)) == [1, 2]  # what was there then
    assert ids(retryable(store, LetterFilter(topic="orders.events"), through=16)) == [2, 4]
    store.apply(DeadLetterBook().fold([Record(16, redrive("orders.events:0:2:saga"))], store))
    assert ids(retryable(store, LetterFilter(), through=16)) == [1, 4, 5]  # not twice
    store.apply(DeadLetterBook().fold([Record(17, dead(6))], store))
    assert ids(retryable(store, LetterFilter(), through=16)) == [1, 4, 5]  # 6 came later
