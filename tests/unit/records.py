"""Stand-ins for unit tests of the folds: a Kafka record and a partition's rows
(what `tables.read_models.LogRecord` and `Stored` ask)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tables.read_models import Folded


@dataclass
class Record:
    offset: int
    value: bytes | None
    key: bytes | None = None
    topic: str = "events"
    partition: int = 0
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


class Rows(dict[bytes, bytes]):
    """A partition's rows in memory, read as a PartitionStore is."""

    def with_prefix(
        self, prefix: bytes, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(self):
            if key.startswith(prefix) and (after is None or key > after):
                yield key, self[key]

    def apply(self, folded: Folded) -> None:
        """Write a batch's rows as the fold runner does (None deletes the key)."""
        for key, value in folded.rows.items():
            if value is None:
                self.pop(key, None)
            else:
                self[key] = value
