"""Rebuilding a read model from its event topic: fold aside, then switch in one step.

A rebuild folds one partition of the event topic, from offset 0, into fresh
in-memory tables with the same fold the live projection uses, while the live
tables keep serving. The switch replaces the live partition's rows with the
rebuilt ones synchronously (no await), so the live projection never sees half
of it; what the live projection folds after the switch goes on from there,
because its version check skips what the rebuild already holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from models.envelope import EventEnvelope

Rows = dict[str, Any]
Fold = Callable[[EventEnvelope, Mapping[str, Any]], object]
"""Folds one event into the named tables (live faust tables or rebuilt dicts)."""


@dataclass(frozen=True)
class ReadModel:
    """A read model that can be rebuilt: its event topic, its tables, its fold."""

    name: str
    events: str
    """The event topic's logical name (settings.topic applies the prefix)."""
    tables: Mapping[str, Any]
    """Table name -> live faust table; the first holds one row per aggregate, versioned."""
    fold: Fold

    @property
    def primary(self) -> str:
        return next(iter(self.tables))


@dataclass
class Switched:
    """What a switch changed in one partition."""

    written: int = 0
    deleted: int = 0
    unchanged: int = 0


def fresh_tables(model: ReadModel) -> dict[str, Rows]:
    return {name: {} for name in model.tables}


def version_of(row: Any) -> int:
    """A row's aggregate version; -1 for a row that has none (corrupt)."""
    if isinstance(row, dict) and isinstance(row.get("version"), int):
        return int(row["version"])
    return -1


def ahead_of(live: Iterable[tuple[str, Any]], rebuilt: Rows) -> set[str]:
    """Keys whose live row reflects more events than the rebuilt one: the live
    projection folded events the rebuild has not read yet (or the row is corrupt)."""
    return {
        key for key, row in live if version_of(row) > version_of(rebuilt.get(key, {"version": 0}))
    }


def switch(live: Any, live_rows: Iterable[tuple[str, Any]], rebuilt: Rows) -> Switched:
    """Make the live table's partition equal to `rebuilt`: write what differs,
    delete what the log does not produce. Synchronous on purpose (see module doc)."""
    counts = Switched()
    stale = [key for key, _ in live_rows if key not in rebuilt]
    for key in stale:
        del live[key]
    counts.deleted = len(stale)
    for key, row in rebuilt.items():
        if live.get(key) == row:
            counts.unchanged += 1
        else:
            live[key] = row
            counts.written += 1
    return counts
