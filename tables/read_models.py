"""Folding events into a read model keyed by aggregate id, once each.

Versions are gap-free per aggregate, so "version <= the model's version"
identifies a redelivered or re-published event without a separate index.
"""

from __future__ import annotations

from typing import Any

from domain.decider import Decider
from models.envelope import EventEnvelope


class Gap(Exception):
    """An event is not the next one of its aggregate: the versions between are missing here.

    Never folded past: the caller reads the missing events from the log first
    (agents/dead_letters.py does, for every agent)."""

    def __init__(self, aggregate_id: str, have: int, got: int) -> None:
        super().__init__(f"gap in {aggregate_id}: read model at version {have}, event at {got}")
        self.aggregate_id = aggregate_id
        self.have = have
        self.got = got


def fold_into(
    table: Any,
    decider: Decider[Any, Any, Any],
    envelope: EventEnvelope,
    *,
    rewrite_repeat: bool = False,
) -> Any:
    """The aggregate's state after folding `envelope` into `table`; None if already folded.

    Raises Gap, writing nothing, when the event is past the next version.

    With `rewrite_repeat`, a repeated event writes the row as it is again: after a
    crash the local store can be ahead of its changelog (the row stored, its record
    never sent), and the offset of ANY redelivered event of that aggregate may be
    committed next, so each one must carry the row to the changelog again.
    """
    key = envelope.aggregate_id
    stored = table.get(key)
    state = (
        decider.initial_state(key) if stored is None else decider.state_type.model_validate(stored)
    )
    if envelope.aggregate_version <= state.version:
        if rewrite_repeat:
            table[key] = stored
        return None
    if envelope.aggregate_version != state.version + 1:
        raise Gap(key, state.version, envelope.aggregate_version)
    state = decider.apply(state, envelope)
    table[key] = state.model_dump(mode="json")
    return state
