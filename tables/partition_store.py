"""One partition of a read model: its rows and the offsets they reflect, written together.

A fold stores the next offset of each source topic's partition in the same
RocksDB WriteBatch as the rows those offsets produced, so after any crash the
rows and the offsets agree: the fold resumes exactly where its rows end, never
skipping an event and never applying one twice. An empty store starts at
offset 0: the event topics themselves are the changelog.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import cast

from rocksdict import Options, Rdict, WriteBatch

from app.settings import settings

OFFSETS = b"\x00offset/"
"""+ topic name -> the next offset of that topic to fold. Sorts before every row key
(row keys never start with NUL)."""

Rows = Mapping[bytes, bytes | None]
"""Rows to write: key -> value, or None to delete the key."""


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    # many partitions share one worker: keep each one's memtables small
    options.set_write_buffer_size(settings.rocksdb_write_buffer_bytes)
    options.set_max_write_buffer_number(2)
    return options


class PartitionStore:
    """A RocksDB database for one source partition of one fold."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = Rdict(str(path), _options())
        self.offsets: dict[str, int] = {
            key[len(OFFSETS) :].decode(): int(value) for key, value in self.with_prefix(OFFSETS)
        }
        """Topic -> the next offset to fold (every offset below it is in the rows)."""

    def offset(self, topic: str) -> int:
        return self.offsets.get(topic, 0)

    def get(self, key: bytes) -> bytes | None:
        value = self._db.get(key)
        return None if value is None else bytes(value)

    def with_prefix(
        self, prefix: bytes, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Rows whose key starts with `prefix`, in key order, from the first key past
        `after` if given (a seek: a page costs O(that page))."""
        start = prefix if after is None else max(prefix, after)
        items = cast(Iterator[tuple[bytes, bytes]], self._db.items(from_key=start))  # raw mode
        for key, value in items:
            if not key.startswith(prefix):
                return
            if key != after:
                yield key, value

    def estimated_keys(self) -> int | None:
        """RocksDB's estimate of the rows (no scan: for metrics)."""
        estimate = self._db.property_int_value("rocksdb.estimate-num-keys")
        return None if estimate is None else int(estimate)

    def rows(self) -> Iterator[tuple[bytes, bytes]]:
        """Every row in key order (the stored offsets are not rows)."""
        return (row for row in self.with_prefix(b"") if not row[0].startswith(b"\x00"))

    def write(self, rows: Rows, offsets: Mapping[str, int]) -> None:
        """Write `rows` and the offsets they reflect (topic -> next offset) in one atomic batch."""
        batch = WriteBatch(raw_mode=True)
        for key, value in rows.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        for topic, offset in offsets.items():
            batch.put(OFFSETS + topic.encode(), str(offset).encode())
        self._db.write(batch)
        self.offsets.update(offsets)

    def close(self) -> None:
        self._db.close()

    def destroy(self) -> None:
        """Close and delete the store from disk."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
