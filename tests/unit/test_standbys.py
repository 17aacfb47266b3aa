"""Warm standbys (agents/folds.py, agents/command_side.py): a partition this worker stands
by for is folded into its store and nothing else: no message sent on, no dead letter
(its owner does both), and its command side decides nothing; when the partition is
assigned here, its writer takes the warm store.

No broker: the fold, the command side and the partition store are stand-ins.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from agents import folds
from agents.command_side import Standby
from agents.folds import FoldRunner
from tables.read_models import Folded, Output
from tests.unit.records import Record


class Store:
    def __init__(self, offset: int = 0) -> None:
        self.offsets = {"t.events": offset}
        self.rows: dict[bytes, bytes | None] = {}
        self.closed = False

    def offset(self, topic: str) -> int:
        return self.offsets[topic]

    def get(self, key: bytes) -> bytes | None:
        return self.rows.get(key)

    def write(self, rows: dict[bytes, bytes | None], offsets: dict[str, int]) -> None:
        self.rows.update(rows)
        self.offsets.update(offsets)

    def close(self) -> None:
        self.closed = True


class Fold:
    """Folds every record into a row, sends a message for each, and fails on b"bad"."""

    name = "standby-test"
    events = ("events",)

    def fold(self, records: Any, stored: Any) -> Folded:
        folded = Folded()
        for record in records:
            if record.value == b"bad":
                folded.failures.append((record, ValueError("bad")))
                continue
            folded.rows[f"row-{record.offset}".encode()] = record.value
            folded.outputs.append(Output("elsewhere", b"k", record.value))
        return folded


def at(*offsets: int, value: bytes = b"{}") -> list[Record]:
    return [Record(topic="t.events", partition=2, offset=o, value=value) for o in offsets]


async def test_a_standby_partition_is_folded_into_rows_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = FoldRunner(Fold())  # type: ignore[arg-type]
    runner.standing_by = {2}
    sent: list[Any] = []
    buried: list[Any] = []

    async def send(outputs: list[Output]) -> None:
        sent.extend(outputs)

    async def bury(*args: Any) -> bool:
        buried.append(args)
        return True

    monkeypatch.setattr(runner, "_send", send)
    monkeypatch.setattr(folds, "bury", bury)
    store = Store(5)
    await runner.handle(2, store, at(5, 6) + at(7, value=b"bad"))  # type: ignore[arg-type]
    assert store.rows == {b"row-5": b"{}", b"row-6": b"{}"}
    assert store.offsets == {"t.events": 8}
    assert sent == [] and buried == []

    runner.standing_by, runner.reading = set(), {2}  # owned here: it sends and buries
    await runner.handle(2, store, at(8) + at(9, value=b"bad"))  # type: ignore[arg-type]
    assert len(sent) == 1 and len(buried) == 1


def side() -> Any:
    fold = SimpleNamespace(
        fold=lambda records, stored: Folded(rows={f"r{r.offset}".encode(): b"1" for r in records})
    )
    return SimpleNamespace(events_topic="t.events", fold=fold)


async def test_a_command_sides_standby_folds_what_the_tail_reads_past_its_offset() -> None:
    store = Store(3)
    standby = Standby(side(), 2, store)  # type: ignore[arg-type]
    await standby.fold_others(at(1, 2, 3, 4))
    assert store.rows == {b"r3": b"1", b"r4": b"1"}
    assert store.offsets["t.events"] == 5


async def test_a_standby_handed_to_its_writer_folds_no_more_and_keeps_its_store_open() -> None:
    store = Store(0)
    standby = Standby(side(), 2, store)  # type: ignore[arg-type]
    assert standby.hand_over() is store
    await standby.fold_others(at(0, 1))  # fetched by the tail before the hand-over
    assert store.rows == {} and not store.closed


async def test_a_standby_no_longer_stood_by_for_closes_its_store() -> None:
    store = Store(0)
    Standby(side(), 2, store).stop()  # type: ignore[arg-type]
    assert store.closed
