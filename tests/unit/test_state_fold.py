"""An aggregate's read model as a batched fold (the accounts': state and history): a batch
of records in, rows and failures out; and the partition store that keeps the rows and
their offsets in one write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agents.folds import _differences, _replace
from app.settings import settings
from domain.accounts import ACCOUNTS
from models.envelope import CommandEnvelope, EventEnvelope
from tables.accounts import accounts_read_model
from tables.partition_store import PartitionStore, _Memory
from tables.read_models import Folded, GapInLog
from tables.state_fold import history_key, read_history, state_key, state_row
from tests.unit.records import Record, Rows

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOPIC = "accounts.events"


def events_of(account_id: str, *deposits: str) -> list[EventEnvelope]:
    """An account opened, then the deposits, as the command side writes them."""
    state = ACCOUNTS.initial_state(account_id)
    commands = [("OpenAccount", {"owner": "Ann"})] + [
        ("DepositMoney", {"amount": amount}) for amount in deposits
    ]
    events: list[EventEnvelope] = []
    for n, (kind, payload) in enumerate(commands):
        command = CommandEnvelope(
            command_id=f"{account_id}-{n}",
            command_type=kind,
            aggregate_id=account_id,
            payload=payload,
            correlation_id="c",
        )
        result, state = ACCOUNTS.execute(command, state, NOW)
        events += result.events
    return events


def records(*envelopes: EventEnvelope, first: int = 0) -> list[Record]:
    return [
        Record(first + n, e.model_dump_json().encode(), e.aggregate_id.encode())
        for n, e in enumerate(envelopes)
    ]


def row(folded: Folded, key: bytes) -> Any:
    value = folded.rows[key]
    assert value is not None
    return json.loads(value)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PartitionStore]:
    opened = PartitionStore(tmp_path / "p3")
    yield opened
    opened.close()


def test_a_batch_writes_each_account_once_and_each_event_by_version() -> None:
    ann = events_of("ann", "10.00", "5.50")
    bob = events_of("bob")
    folded = accounts_read_model.fold(records(ann[0], bob[0], ann[1], ann[2]), Rows())

    assert folded.failures == []
    state = row(folded, state_key("ann"))
    assert (state["balance"], state["version"]) == ("15.50", 3)
    assert row(folded, state_key("bob"))["version"] == 1
    assert folded.rows[history_key("ann", 2)] == ann[1].model_dump_json().encode()
    assert len(folded.rows) == 2 + 4  # two states, four history rows
    assert folded.outputs == []


def test_a_batch_goes_on_from_the_stored_state(store: PartitionStore) -> None:
    ann = events_of("ann", "10.00", "5.50")
    fold = accounts_read_model
    first = records(*ann)
    store.write(fold.fold(first[:2], store).rows, {TOPIC: 2})
    store.write(fold.fold(first[2:], store).rows, {TOPIC: 3})

    assert state_row(store, "ann") == {
        **json.loads(ACCOUNTS.replay("ann", ann).model_dump_json()),
    }
    assert [e.aggregate_version for e in read_history(store, "ann")] == [1, 2, 3]
    assert read_history(store, "an") == []  # a prefix of another id is not that account


def test_a_repeated_event_changes_nothing(store: PartitionStore) -> None:
    ann = events_of("ann", "10.00")
    fold = accounts_read_model
    store.write(fold.fold(records(*ann), store).rows, {TOPIC: 2})

    again = fold.fold(records(ann[1], first=2), store)

    assert again.rows == {} and again.failures == []


def test_an_event_past_the_next_version_is_a_gap_in_the_log_and_the_rest_goes_on() -> None:
    ann = events_of("ann", "10.00", "20.00")
    bob = events_of("bob")
    folded = accounts_read_model.fold(records(ann[0], ann[2], bob[0]), Rows())

    [(record, error)] = folded.failures
    assert record.offset == 1 and isinstance(error, GapInLog)
    assert "read model at version 1, event at 3" in str(error)
    assert "lacks versions [2]" in str(error)
    assert row(folded, state_key("ann"))["version"] == 1
    assert row(folded, state_key("bob"))["version"] == 1


def test_an_undecodable_record_is_a_failure_and_the_batch_goes_on() -> None:
    ann = events_of("ann")
    batch = [Record(0, b"\x00not json"), Record(1, None), *records(ann[0], first=2)]
    folded = accounts_read_model.fold(batch, Rows())

    assert [r.offset for r, _ in folded.failures] == [0, 1]
    assert all(type(e).__name__ == "ValidationError" for _, e in folded.failures)
    assert row(folded, state_key("ann"))["version"] == 1


def test_the_offsets_are_stored_with_the_rows_and_read_back(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p0")
    assert store.offset(TOPIC) == 0
    store.write({b"a/x": b"1", b"a/y": b"2"}, {TOPIC: 42})
    store.write({b"a/y": None}, {TOPIC: 43, "other.events": 7})
    store.close()

    reopened = PartitionStore(tmp_path / "p0")
    assert (reopened.offset(TOPIC), reopened.offset("other.events")) == (43, 7)
    assert list(reopened.rows()) == [(b"a/x", b"1")]
    reopened.destroy()
    assert not (tmp_path / "p0").exists()


def test_a_rebuilt_store_replaces_the_live_one_and_the_switch_is_counted(
    tmp_path: Path,
) -> None:
    live = PartitionStore(tmp_path / "p1")
    live.write({b"a/same": b"1", b"a/wrong": b"999", b"a/ghost": b"1"}, {TOPIC: 10})
    fresh = PartitionStore(tmp_path / "p1.rebuild", durable=False)  # as a rebuild makes it
    fresh.write({b"a/same": b"1", b"a/wrong": b"2", b"a/missing": b"3"}, {TOPIC: 10})

    assert _differences(live, fresh) == (2, 1, 1)  # written, deleted, unchanged
    swapped = _replace(live, fresh)

    assert swapped.path == tmp_path / "p1" and not (tmp_path / "p1.rebuild").exists()
    assert dict(swapped.rows()) == {b"a/same": b"1", b"a/wrong": b"2", b"a/missing": b"3"}
    assert swapped.offset(TOPIC) == 10
    swapped.close()


def test_rows_start_past_the_offsets_whatever_the_first_byte(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p2")
    store.write({b"\x01low": b"1", b"a/x": b"2", b"\xffhigh": b"3"}, {TOPIC: 5})
    assert [key for key, _ in store.rows()] == [b"\x01low", b"a/x", b"\xffhigh"]
    store.close()


def test_a_prefix_read_starts_past_after(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p2")
    store.write({b"paid/o-1": b"1", b"paid/o-2": b"2", b"paid/o-3": b"3", b"shipped/o-4": b"4"}, {})
    keys = [k for k, _ in store.with_prefix(b"paid/", after=b"paid/o-1")]
    assert keys == [b"paid/o-2", b"paid/o-3"]
    assert [k for k, _ in store.with_prefix(b"paid/", after=b"paid/")] == [
        b"paid/o-1",
        b"paid/o-2",
        b"paid/o-3",
    ]
    store.close()


def test_a_hundred_idle_stores_stay_far_below_the_memtable_budget(tmp_path: Path) -> None:
    """A worker holds about a hundred stores. The shared budget counts the blocks each
    memtable took, so with RocksDB's default block size one write to each store put
    the worker over the budget and every later write flushed its store to a new file."""
    stores = [PartitionStore(tmp_path / f"p{n}") for n in range(100)]
    for round_ in range(5):
        for store in stores:
            store.write({f"a/{round_}".encode(): b"x" * 200}, {TOPIC: round_ + 1})
    memtables = _Memory.memtables
    assert memtables is not None
    assert memtables.get_usage() < settings.rocksdb_memtables_bytes / 2
    assert not list(tmp_path.glob("*/*.sst"))  # nothing was flushed
    for store in stores:
        store.close()
