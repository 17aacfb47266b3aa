"""Analytics as two batched folds: events -> metric facts -> event-time windows.

`facts` reads orders.events and payments.events (every partition, where the
orders' commands are decided) and sends each batch's facts on, as a few
messages keyed "all", to the one-partition topic `analytics.facts`. It keeps
no rows; a batch folded again after a crash sends its facts again, and the
window fold counts a repeated event id once.

`windows` folds `analytics.facts` (one partition, so one store sees every fact
and the global figures are exact) into rows, sorted so expiry is a walk from
the start of each prefix:

    meta                          watermark, processed, duplicates, late counters
    w/<family>/<start ms>         a tumbling window's figures
    k/<family>/<start ms>         a hopping window's quantity and revenue per SKU
    s/<second ms>                 the event ids already folded in that second (dedup)

Both are pure: the clock they need is the facts message's own timestamp, so
folding the same records again (a crash, a rebuild) gives the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

from app.settings import settings
from domain.analytics import (
    Analytics,
    Config,
    Fact,
    empty_meta,
    expired_keys,
    fact_from_event,
    sku_key,
    trailing_hop_start,
    window_key,
)
from models.upcasting import decode_event, fold_head
from tables.analytics_answers import summary_starts, top_skus, window_row
from tables.read_models import Folded, LogRecord, Output, Stored

config = settings.analytics.checked(Config)
"""The window sizes (ANALYTICS_*_SECONDS); sizes that cannot work together stop the worker."""

RELEVANT = frozenset(
    {
        "OrderPlaced",
        "OrderCancelled",
        "OrderShipped",
        "PaymentCaptured",
        "PaymentDeclined",
        "PaymentRefunded",
    }
)
FACTS_PER_MESSAGE = 500
"""Facts per message on analytics.facts: even orders of 50 lines stay far below 1 MB."""
FACTS_KEY = b"all"
PURGE_EVERY_MS = 60_000
"""Expired windows and event ids are deleted each time event time passes a minute."""
META = Analytics.META


class FactsFold:
    """orders.events + payments.events -> messages of facts on `analytics.facts`."""

    name = "analytics-facts"
    events: tuple[str, ...] = ("orders.events", "payments.events")

    def __init__(self) -> None:
        self.to = settings.topic("analytics.facts")

    def fold(self, records: Sequence[LogRecord], stored: Stored) -> Folded:
        folded = Folded()
        facts: list[Fact] = []
        for record in records:
            try:
                fact = fact_of(record.value or b"")
            except Exception as error:  # the event's own fault: no retry changes it
                folded.failures.append((record, error))
                continue
            if fact is not None:
                facts.append(fact)
        for n in range(0, len(facts), FACTS_PER_MESSAGE):
            chunk = json.dumps(facts[n : n + FACTS_PER_MESSAGE]).encode()
            folded.outputs.append(Output(self.to, FACTS_KEY, chunk))
        return folded


def fact_of(raw: bytes) -> Fact | None:
    # a cheap look at the type first: most events are not metrics
    if fold_head(raw).event_type not in RELEVANT:
        return None
    return fact_from_event(decode_event(raw))


class WindowFold:
    """`analytics.facts` -> windows, late counters and seen event ids (one partition)."""

    name = "analytics"
    events: tuple[str, ...] = ("analytics.facts",)

    def __init__(self, config: Config = config) -> None:
        self.config = config

    def fold(self, records: Sequence[LogRecord], stored: Stored) -> Folded:
        folded = Folded()
        rows = Overlay(stored)
        state = Analytics(rows, self.config)
        for record in records:
            try:
                facts = facts_in(record.value)
            except ValueError as error:  # never produced by us
                folded.failures.append((record, error))
                continue
            for fact in facts:
                state.apply(fact, now_ms=record.timestamp)
            meta = state.meta()
            bucket = meta["watermark"] // PURGE_EVERY_MS
            if bucket != meta.get("purged", -1):
                expire(state, rows, stored)
                rows[META] = {**state.meta(), "purged": bucket}
        folded.rows = rows.changes()
        return folded


def facts_in(value: bytes | None) -> list[Fact]:
    """The facts of one message (a list; a single fact is accepted too), checked for
    the fields the fold reads, so a malformed message is refused whole."""
    message = json.loads(value or b"")
    facts = message if isinstance(message, list) else [message]
    for fact in facts:
        if not (
            isinstance(fact, dict)
            and isinstance(fact.get("id"), str)
            and type(fact.get("at")) is int
            and isinstance(fact.get("kind"), str)
        ):
            raise ValueError(f"not a fact: {str(fact)[:200]}")
    return facts


def expire(state: Analytics, rows: Overlay, stored: Stored) -> int:
    """Delete expired windows and event ids (the oldest keys of each prefix); how many."""
    removed = 0
    for prefix, first_kept in state.expiry().items():
        old = (key.decode() for key, _ in stored.with_prefix(prefix.encode()))
        new = sorted(key for key in rows.written() if key.startswith(prefix))
        expired = {*expired_keys(old, prefix, first_kept), *expired_keys(new, prefix, first_kept)}
        for key in expired:
            del rows[key]
            removed += 1
    return removed


_GONE = object()


class Overlay(MutableMapping[str, Any]):
    """The stored rows (JSON) as a mapping: reads through, keeps writes and deletes
    for the batch's `changes`, so each touched key is written once per batch."""

    def __init__(self, stored: Stored) -> None:
        self.stored = stored
        self.cache: dict[str, Any] = {}
        self.dirty: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        value = self.cache.get(key, _GONE)
        if value is _GONE:
            raw = self.stored.get(key.encode())
            value = self.cache[key] = None if raw is None else json.loads(raw)
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
        """The keys this batch has read or written (the fold addresses keys by name)."""
        return iter([key for key, value in self.cache.items() if value is not None])

    def __len__(self) -> int:  # pragma: no cover
        return len(self.cache)

    def written(self) -> list[str]:
        return [key for key in self.dirty if self.cache[key] is not None]

    def changes(self) -> dict[bytes, bytes | None]:
        return {
            key.encode(): None if self.cache[key] is None else json.dumps(self.cache[key]).encode()
            for key in self.dirty
        }


# --- reads (where the one partition is folded), shaped by tables/analytics_answers.py --


def _row(store: Stored, key: str) -> Any:
    raw = store.get(key.encode())
    return None if raw is None else json.loads(raw)


def meta(store: Stored) -> dict[str, Any]:
    return dict(_row(store, META) or empty_meta())


def families() -> dict[str, int]:
    return config.tumbling


def summary(store: Stored, family: str, last: int, until_ms: int, now_ms: int) -> dict[str, Any]:
    size = config.tumbling[family]
    info = meta(store)
    rows = [
        window_row(
            family,
            size,
            start,
            _row(store, window_key(family, start)),
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


def top(store: Stored, limit: int, until_ms: int) -> dict[str, Any]:
    size_ms, step_ms = config.hop_size * 1000, config.hop_step * 1000
    start = trailing_hop_start(until_ms, size_ms, step_ms)
    skus = _row(store, sku_key(config.hop_label, start)) or {}
    return {
        "window": config.hop_label,
        "size_seconds": config.hop_size,
        "step_seconds": config.hop_step,
        "start_ms": start,
        "end_ms": start + size_ms,
        "skus": len(skus),
        "by_quantity": top_skus(skus, limit, "quantity"),
        "by_revenue": top_skus(skus, limit, "revenue"),
        "late": meta(store)["late"].get(config.hop_label, 0),
    }
