"""Ordered reads over one table: the keys that share a prefix, in key order.

faust tables have no range API, but each partition is a RocksDB with sorted
keys, so `seek(prefix)` reads one aggregate's rows in O(those rows). The
memory store (unit tests) falls back to a sorted scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from faust.types import TableT

OFFSET_KEY = b"__faust\0offset__"


def rows_with_prefix(
    table: TableT, prefix: str, after: str | None = None
) -> Iterator[tuple[str, Any]]:
    """(key, value) pairs whose key starts with `prefix`, in key order, past `after`."""
    raw_prefix = prefix.encode()
    start = raw_prefix if after is None else after.encode() + b"\0"
    store = cast(Any, table.data)
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        keys = (k for k in store if _as_text(k).startswith(prefix))
        for key in sorted(k for k in keys if after is None or _as_text(k) > after):
            yield _as_text(key), store[key]
        return
    for db in list(dbs.values()):
        yield from _scan(store, db, start, raw_prefix)


def _as_text(key: Any) -> str:
    return key.decode() if isinstance(key, bytes) else str(key)


def _scan(store: Any, db: Any, start: bytes, prefix: bytes) -> Iterator[tuple[str, Any]]:
    """One RocksDB's rows from `start` while keys share `prefix`, without faust's offset key."""
    iterator = db.iter()
    iterator.seek(start)
    while iterator.valid():
        key = iterator.key()
        if not key.startswith(prefix):
            break
        if key != OFFSET_KEY:
            yield key.decode(), store._decode_value(iterator.value())
        iterator.next()
