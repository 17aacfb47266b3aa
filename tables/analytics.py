"""The analytics table: every window's figures, the late counters and the seen event ids.

One table with ONE partition, written only by the agent that consumes the
one-partition `analytics.facts` topic, so writes are co-partitioned by
construction and a read on the owner sees every figure. Keys (sorted, so
expiry is a range delete from the start):

    meta                          watermark, processed, duplicates, late counters
    w/<family>/<start ms>         a tumbling window's figures
    k/<family>/<start ms>         a hopping window's quantity and revenue per SKU
    s/<second ms>                 the event ids already folded in that second (dedup)

A batch of facts is folded into a write-back `Overlay`, then each touched key
is written once: one changelog record per key per batch, not per fact.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, MutableMapping
from typing import Any

from app.main import app
from domain.analytics import (
    Analytics,
    Config,
    empty_meta,
    expired_keys,
    sku_key,
    summary_starts,
    top_skus,
    trailing_hop_start,
    window_key,
    window_row,
)
from tables.ranges import rows_with_prefix

config = Config.from_env()

ROUTE_KEY = "all"
"""The one key every fact is sent with; any key routes to the single partition's owner."""

analytics = app.Table(
    "analytics",
    partitions=1,
    key_type=bytes,
    help="Analytics: windowed figures, late counters and seen event ids (one partition).",
)

_MISSING = object()


class Overlay(MutableMapping[str, Any]):
    """Reads through to the table, buffers writes and deletes until `flush`."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.cache: dict[str, Any] = {}
        self.dirty: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        value = self.cache.get(key, _MISSING)
        if value is _MISSING:
            value = self.cache[key] = self.table.get(key.encode())
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.cache[key] = value
        self.dirty.add(key)

    def __delitem__(self, key: str) -> None:
        self.cache[key] = None
        self.dirty.add(key)

    def __iter__(self) -> Iterator[str]:
        """The keys this batch has read or written (not the whole table: the fold
        only ever addresses keys by name)."""
        return iter([key for key, value in self.cache.items() if value is not None])

    def __len__(self) -> int:  # pragma: no cover
        return len(self.cache)

    def flush(self) -> int:
        """Write each changed key once; the number of keys written."""
        written = 0
        for key in self.dirty:
            value = self.cache[key]
            if value is None:
                self.table.pop(key.encode(), None)
            else:
                self.table[key.encode()] = value
            written += 1
        self.dirty.clear()
        return written


def fold_batch(facts: list[dict[str, Any]], now_ms: int | None = None) -> dict[str, int]:
    """Fold a batch of facts into the table; outcome -> count. Call inside stream iteration."""
    overlay = Overlay(analytics)
    state = Analytics(overlay, config)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    outcomes: dict[str, int] = {}
    for fact in facts:
        outcome = state.apply(fact, now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    overlay.flush()
    return outcomes


def purge() -> int:
    """Delete expired windows and event ids (the oldest keys of each prefix); how many."""
    state = Analytics(Overlay(analytics), config)
    removed = 0
    for prefix, first_kept in state.expiry().items():
        keys = list(
            expired_keys(
                (key for key, _ in rows_with_prefix(analytics, prefix)), prefix, first_kept
            )
        )
        for key in keys:
            analytics.pop(key.encode(), None)
        removed += len(keys)
    return removed


def meta() -> dict[str, Any]:
    return dict(analytics.get(b"meta") or empty_meta())


class RateMeter:
    """Facts folded per second, over the last few whole seconds, on the worker folding them."""

    def __init__(self, span: int = 5) -> None:
        self.span = span
        self.seconds: deque[list[int]] = deque()
        self.total = 0

    def add(self, count: int, now: float | None = None) -> None:
        self.total += count
        second = int(time.monotonic() if now is None else now)
        if self.seconds and self.seconds[-1][0] == second:
            self.seconds[-1][1] += count
        else:
            self.seconds.append([second, count])
        while self.seconds and self.seconds[0][0] < second - self.span:
            self.seconds.popleft()

    def rate(self, now: float | None = None) -> float:
        second = int(time.monotonic() if now is None else now)
        counted = sum(n for s, n in self.seconds if second - self.span <= s < second)
        return round(counted / self.span, 2)


folded_rate = RateMeter()


# --- reads (on the owner of the single partition) ---------------------------------------


def families() -> dict[str, int]:
    return config.tumbling


def summary(family: str, last: int, until_ms: int, now_ms: int) -> dict[str, Any]:
    size = config.tumbling[family]
    info = meta()
    rows = [
        window_row(
            family,
            size,
            start,
            analytics.get(window_key(family, start).encode()),
            config,
            info["watermark"],
            now_ms,
        )
        for start in summary_starts(size, last, until_ms)
    ]
    return {
        "window": family,
        "size_seconds": size,
        "grace_seconds": config.grace,
        "watermark": info["watermark"],
        "late": info["late"].get(family, 0),
        "windows": rows,
    }


def top(limit: int, until_ms: int) -> dict[str, Any]:
    size_ms, step_ms = config.hop_size * 1000, config.hop_step * 1000
    start = trailing_hop_start(until_ms, size_ms, step_ms)
    skus = analytics.get(sku_key(config.hop_label, start).encode()) or {}
    return {
        "window": config.hop_label,
        "size_seconds": config.hop_size,
        "step_seconds": config.hop_step,
        "start_ms": start,
        "end_ms": start + size_ms,
        "skus": len(skus),
        "by_quantity": top_skus(skus, limit, "quantity"),
        "by_revenue": top_skus(skus, limit, "revenue"),
        "late": meta()["late"].get(config.hop_label, 0),
    }
