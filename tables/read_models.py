"""Folding events into a read model keyed by aggregate id, once each.

Versions are gap-free per aggregate, so "version <= the model's version"
identifies a redelivered or re-published event without a separate index.
A `BatchFold` folds a batch of records into rows (agents/folds.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol


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
