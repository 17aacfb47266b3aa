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

from rocksdict import (
    BlockBasedOptions,
    Cache,
    Options,
    Rdict,
    WriteBatch,
    WriteBufferManager,
    WriteOptions,
)

from app.settings import settings

OFFSETS = b"\x00offset/"
"""+ topic name -> the next offset of that topic to fold. Sorts before every row key
(row keys never start with NUL)."""

ROWS_FROM = b"\x01"
"""The first possible row key."""

Rows = Mapping[bytes, bytes | None]
"""Rows to write: key -> value, or None to delete the key."""


ARENA_BLOCK_BYTES = 64 * 1024


class _Memory:
    """What every store of this worker shares, made on first use (settings are read
    then, not at import): one block cache and one budget for all memtables.

    A worker holds a store per fold, command side and reader per partition (about a
    hundred with eight partitions), so anything given per store is multiplied by that:
    RocksDB's default block cache is 32 MiB per database, and a fold from 0 that reads
    back a million new keys fills every one it touches. Shared, the worker's RocksDB
    memory has one bound whatever the number of stores: the cache (index and filter
    blocks included, so they are bounded too) plus the memtable budget."""

    cache: Cache | None = None
    memtables: WriteBufferManager | None = None

    @classmethod
    def options(cls) -> Options:
        if cls.cache is None or cls.memtables is None:
            cls.cache = Cache(settings.rocksdb_block_cache_bytes)
            # allow_stall off: a write over the budget flushes, it does not wait
            cls.memtables = WriteBufferManager(settings.rocksdb_memtables_bytes, False)
        table = BlockBasedOptions()
        table.set_block_cache(cls.cache)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_bloom_filter(
            10, False
        )  # a get of a key never written (a new account) skips the file
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(cls.memtables)
        options.set_write_buffer_size(settings.rocksdb_write_buffer_bytes)
        options.set_max_write_buffer_number(2)
        # a memtable takes its arena a block at a time, and the budget counts blocks, not
        # data: at RocksDB's default block (an eighth of the write buffer) a hundred stores
        # that each took one write were ~100 MB "used", and every write flushed its store
        options.set_arena_block_size(ARENA_BLOCK_BYTES)
        return options


class PartitionStore:
    """A RocksDB database for one source partition of one fold.

    `durable=False` (a rebuild's fresh store): writes skip RocksDB's write-ahead log,
    and `seal()` puts them in files. A crash loses the store, which a rebuild throws
    away and begins again anyway; a live store is always durable."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = Rdict(str(path), _Memory.options())
        self._write_options = WriteOptions()
        # a property at run time; rocksdict's type stub calls it a method
        self._write_options.disable_wal = not durable  # type: ignore[method-assign,assignment]
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
        """Every row in key order: from the first key past the stored offsets (which start
        with NUL, as no row key does), so a rebuild's comparison of a whole store reads
        each row once, with no check per row."""
        return cast(Iterator[tuple[bytes, bytes]], iter(self._db.items(from_key=ROWS_FROM)))

    def write(self, rows: Rows, offsets: Mapping[str, int]) -> None:
        """Write `rows` and the offsets they reflect (topic -> next offset) in one atomic batch."""
        batch = WriteBatch(raw_mode=True)
        # in key order: RocksDB's memtable takes a sorted batch in about half the time
        for key, value in sorted(rows.items()):
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        for topic, offset in offsets.items():
            batch.put(OFFSETS + topic.encode(), str(offset).encode())
        self._db.write(batch, self._write_options)
        self.offsets.update(offsets)

    def seal(self) -> None:
        """Put every write in the store's files (what a store without its log needs
        before it is closed and opened as a live one)."""
        self._db.flush(wait=True)

    def close(self) -> None:
        self._db.close()

    def destroy(self) -> None:
        """Close and delete the store from disk."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
