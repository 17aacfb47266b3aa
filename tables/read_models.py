"""Folding events into a read model keyed by aggregate id, once each.

Versions are gap-free per aggregate, so "version <= the model's version"
identifies a redelivered or re-published event without a separate index.
Two shapes: `fold_into` folds one event into a faust table (the per-message
agents), `BatchFold` folds a batch of records into rows (agents/folds.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.decider import Decider
from models.envelope import EventEnvelope


class Record(Protocol):
    """What a fold (and a dead letter) needs of a Kafka record: aiokafka's
    ConsumerRecord and faust's Message both have it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class LogRecord(Record, Protocol):
    """A record as a batched fold reads it (aiokafka's ConsumerRecord)."""

    timestamp: int
    """Milliseconds since the epoch: when the producer sent it. A fold that needs a
    clock reads this one, so folding the same records again gives the same rows."""


class Stored(Protocol):
    """The partition's rows as they were before the batch (a PartitionStore)."""

    def get(self, key: bytes) -> bytes | None: ...

    def with_prefix(
        self, prefix: bytes, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]: ...


@dataclass(frozen=True)
class Output:
    """A message a fold sends on (a repartitioned view's feed): sent and acknowledged
    before the batch's offsets are stored, so a crash sends it again, never loses it."""

    topic: str
    """The topic's full name (settings.topic of its logical name)."""
    key: bytes
    value: bytes | None
    """None: a tombstone (the key's row is gone)."""
    partition_by: bytes | None = None
    """Partition by this instead of the key (a view keyed "customer/order" lives in
    the customer's partition)."""


@dataclass
class Folded:
    """A batch's outcome: the rows to write, the messages to send on, and the records
    that could not be folded."""

    rows: dict[bytes, bytes | None] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    failures: list[tuple[Record, Exception]] = field(default_factory=list)

    def current(self, key: bytes, stored: Stored) -> bytes | None:
        """The row as this batch left it so far, else as stored."""
        return self.rows[key] if key in self.rows else stored.get(key)


class BatchFold(Protocol):
    """A read model folded from one event topic, a batch of one partition at a time.

    `fold` is pure: the same records over the same stored rows give the same rows,
    so a batch lost in a crash is simply folded again from the stored offset."""

    name: str
    """Names it in metrics, dead letters and /ops (e.g. "accounts-projection")."""
    events: tuple[str, ...]
    """The topics it folds, by logical name (settings.topic applies the prefix);
    partition p of each is folded into the same store."""

    def fold(self, records: Sequence[LogRecord], stored: Stored) -> Folded: ...


class GapInLog(Exception):
    """The event log itself lacks versions of an aggregate: nothing here can fold it."""


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
) -> Any:
    """The aggregate's state after folding `envelope` into `table`; None if already folded.

    Raises Gap, writing nothing, when the event is past the next version.
    """
    key = envelope.aggregate_id
    stored = table.get(key)
    state = (
        decider.initial_state(key) if stored is None else decider.state_type.model_validate(stored)
    )
    if envelope.aggregate_version <= state.version:
        return None
    if envelope.aggregate_version != state.version + 1:
        raise Gap(key, state.version, envelope.aggregate_version)
    state = decider.apply(state, envelope)
    table[key] = state.model_dump(mode="json")
    return state
