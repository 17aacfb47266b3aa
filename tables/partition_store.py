"""One partition of a read model: its rows and the offset they reflect, written together.

A fold stores the next offset of its source partition in the same RocksDB
WriteBatch as the rows that offset produced, so after any crash the rows and
the offset agree: the fold resumes exactly where its rows end, never skipping
an event and never applying one twice. An empty store starts at offset 0: the
event topic itself is the changelog.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch

from app.settings import settings

OFFSET_KEY = b"\x00offset"
"""The next source offset to fold; sorts before every row key (rows never start with NUL)."""

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
        stored = self._db.get(OFFSET_KEY)
        self.offset: int = 0 if stored is None else int(stored)
        """The next source offset to fold (every offset below it is in the rows)."""

    def get(self, key: bytes) -> bytes | None:
        value = self._db.get(key)
        return None if value is None else bytes(value)

    def with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Rows whose key starts with `prefix`, in key order (O(those rows))."""
        it = self._db.iter()
        it.seek(prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                return
            yield key, it.value()
            it.next()

    def rows(self) -> Iterator[tuple[bytes, bytes]]:
        """Every row in key order (the stored offset is not a row)."""
        return (row for row in self.with_prefix(b"") if row[0] != OFFSET_KEY)

    def write(self, rows: Rows, next_offset: int) -> None:
        """Write `rows` and the offset they reflect in one atomic batch."""
        batch = WriteBatch(raw_mode=True)
        for key, value in rows.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(OFFSET_KEY, str(next_offset).encode())
        self._db.write(batch)
        self.offset = next_offset

    def close(self) -> None:
        self._db.close()

    def destroy(self) -> None:
        """Close and delete the store from disk."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
