"""The read model every aggregate has: its state by id, folded from its event topic in batches.

Rows: `s/<id>` -> the state (JSON), written once per batch per touched
aggregate; with `history`, `h/<id>/<version>` -> the event as the log holds it
(so the event topic is that row's changelog). Versions are gap-free per
aggregate, so an event at or below the state's version is a repeat (a retried
append) and changes nothing; one past the next version is a gap in the log
itself (every earlier offset of the partition was folded): not folded, returned
as a failure for the dead-letter topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel

from domain.decider import Decider
from models.envelope import EventEnvelope
from models.upcasting import decode_event, fold_head
from tables.partition_store import PartitionStore
from tables.read_models import Folded, GapInLog, LogRecord, Stored

S = TypeVar("S", bound=BaseModel)

STATE = b"s/"
HISTORY = b"h/"

OnChange = Callable[[Any, Any], Mapping[bytes, bytes | None]]
"""(state before or None, state after) -> rows kept beside the state, in the same write
(an index by another key; None deletes a row)."""


def state_key(aggregate_id: str) -> bytes:
    return STATE + aggregate_id.encode()


def history_key(aggregate_id: str, version: int) -> bytes:
    # zero-padded so RocksDB's byte order is version order
    return HISTORY + f"{aggregate_id}/{version:012d}".encode()


class StateFold(Generic[S]):
    """`events` -> each aggregate's state (and its events by version, with `history`)."""

    def __init__(
        self,
        name: str,
        events: str,
        decider: Decider[Any, Any, S],
        *,
        history: bool = False,
        on_change: OnChange | None = None,
    ) -> None:
        self.name = name
        self.events: tuple[str, ...] = (events,)
        self.decider = decider
        self.history = history
        self.on_change = on_change

    def fold(self, records: Sequence[LogRecord], stored: Stored) -> Folded:
        """Fold in order; each touched aggregate's state is written once per batch."""
        states: dict[str, S] = {}
        folded = Folded()
        for record in records:
            try:
                head = fold_head(record.value or b"")  # decoded once
                key = head.aggregate_id
                state = states.get(key)
                if state is None:
                    state = self._stored_state(stored, key)
                version = head.aggregate_version
                have = _version(state)
                if version <= have:
                    continue
                if version != have + 1:
                    raise GapInLog(
                        f"gap in {key}: read model at version {have}, event at {version}; "
                        f"the log of {record.topic}[{record.partition}] lacks versions "
                        f"{list(range(have + 1, version))[:20]}"
                    )
                event = self.decider.events[head.event_type].model_validate(head.payload)
                states[key] = new = self.decider.evolve(state, event, head.occurred_at)
                if self.history:
                    folded.rows[history_key(key, version)] = record.value
                if self.on_change is not None:
                    folded.rows.update(self.on_change(None if have == 0 else state, new))
                self.folded_event(record, key, folded, stored)
            except Exception as error:  # a pure fold: no retry would change the outcome
                folded.failures.append((record, error))
        for key, state in states.items():
            folded.rows[state_key(key)] = state.model_dump_json().encode()
        return folded

    def folded_event(self, record: LogRecord, key: str, folded: Folded, stored: Stored) -> None:
        """Called after each event folded into the state: rows kept beside it (a hook)."""

    def _stored_state(self, stored: Stored, key: str) -> S:
        raw = stored.get(state_key(key))
        if raw is None:
            return self.decider.initial_state(key)
        return self.decider.state_type.model_validate_json(raw)


def _version(state: BaseModel) -> int:
    return int(cast(Any, state).version)  # every aggregate's state has one


def state_row(store: PartitionStore, aggregate_id: str) -> dict[str, Any] | None:
    """The aggregate's state row (a JSON dict), None if it does not exist."""
    raw = store.get(state_key(aggregate_id))
    return None if raw is None else dict(json.loads(raw))


def read_history(store: PartitionStore, aggregate_id: str) -> list[EventEnvelope]:
    """One aggregate's events in version order (upcast to today's shapes), O(that stream)."""
    prefix = HISTORY + f"{aggregate_id}/".encode()
    return [decode_event(raw) for _, raw in store.with_prefix(prefix)]
