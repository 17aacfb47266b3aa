"""Live analytics as pure functions: event-time windows over small metric facts.

The pipeline: every relevant event (orders.events, payments.events) becomes a
*fact* (`fact_from_event`), a small dict with the event id, its event time in
epoch milliseconds and what it says. Facts are repartitioned to ONE key, so a
single fold (`Analytics.apply`) sees all of them and global figures are exact.

Windows are computed here, explicitly, from the event time (not arrival time):

* tumbling windows (default 10 s and 1 min): orders placed and their value,
  payments captured (revenue), declined, refunded, cancellations by reason,
  shipments;
* one hopping window (default 5 min every 1 min): quantity and revenue per SKU.

The fold keeps a *watermark*: the newest event time seen (never more than
`MAX_FUTURE_MS` ahead of the wall clock, so one bad clock cannot close every
window). A fact lands in a window unless that window ended more than `grace`
before the watermark; then it is counted as late for that window family
instead (`meta["late"]`), never dropped silently. Windows are deleted
`retention` after they end, so the state stays bounded.

Redelivery: each fact's event id is remembered (`s/<second>`: the ids of that second)
for as long as it could still land in a window; a repeated id counts once.

The state is any mutable mapping from str keys to JSON values: a dict in the
unit tests, a write-back overlay over the partition store in the fold
(tables/analytics.py). The window sizes come in as a `Config` value (read from
the environment in app/settings.py); shaping the figures into answers is the
read side's (tables/analytics_answers.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from models.envelope import EventEnvelope

CENT = Decimal("0.01")
ZERO = "0.00"
MAX_FUTURE_MS = 5 * 60 * 1000
"""The watermark never runs further ahead of the wall clock than this."""

Fact = dict[str, Any]
Outcome = Literal["folded", "duplicate", "late", "partly_late"]


# --- configuration ------------------------------------------------------------------


def label(seconds: int) -> str:
    """A window size as the API names it: 10s, 1m, 5m, 90s, 1h."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


class InvalidConfig(ValueError):
    """Window sizes that cannot work together; `field` names the one to change (None: both
    tumbling windows)."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field} {reason}" if field else reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Config:
    """The window sizes, in whole seconds (positive: app/settings.py reads them)."""

    window: int = 60
    """The main tumbling window."""
    live_window: int = 10
    """The live view's tumbling window."""
    hop_size: int = 300
    hop_step: int = 60
    grace: int = 30
    """A window still takes events this long after it ended (event time)."""
    retention: int = 3600
    """Windows are deleted this long after they ended."""

    def __post_init__(self) -> None:
        check(self)

    @property
    def tumbling(self) -> dict[str, int]:
        """label -> size in seconds, of every tumbling window family."""
        return {label(self.live_window): self.live_window, label(self.window): self.window}

    @property
    def hop_label(self) -> str:
        return label(self.hop_size)

    @property
    def seen_keep_ms(self) -> int:
        """How long an event id is remembered: until no window can take its event any more."""
        return (max(self.hop_size, self.window, self.live_window) + self.grace + 60) * 1000


def check(config: Config) -> None:
    """InvalidConfig when the sizes cannot work together (every Config is checked)."""
    if config.hop_size % config.hop_step:
        raise InvalidConfig("hop_size", "must be a multiple of the hop step")
    if config.retention < config.grace:
        raise InvalidConfig("retention", "must be at least the grace period")
    if config.window == config.live_window:
        raise InvalidConfig(None, "the two tumbling windows must differ in size")


SEEN_BUCKET_MS = 1_000
"""Seen event ids are kept in one row per second of event time (one changelog record per
touched second per batch, instead of one per event)."""


# --- window math ----------------------------------------------------------------------


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def window_start(at_ms: int, size_ms: int) -> int:
    """The start of the tumbling window of `size_ms` that contains `at_ms`."""
    return at_ms - at_ms % size_ms


def hopping_starts(at_ms: int, size_ms: int, step_ms: int) -> list[int]:
    """Starts of every hopping window [start, start + size) that contains `at_ms`, oldest first."""
    last = window_start(at_ms, step_ms)
    return [last - n * step_ms for n in range(size_ms // step_ms - 1, -1, -1)]


def trailing_hop_start(at_ms: int, size_ms: int, step_ms: int) -> int:
    """The hopping window that contains `at_ms` and ends soonest: the last `size` up to now."""
    return hopping_starts(at_ms, size_ms, step_ms)[0]


def window_key(family: str, start_ms: int) -> str:
    return f"w/{family}/{start_ms:013d}"


def sku_key(family: str, start_ms: int) -> str:
    return f"k/{family}/{start_ms:013d}"


def seen_key(fact: Fact) -> str:
    return f"s/{window_start(fact['at'], SEEN_BUCKET_MS):013d}"


# --- facts -----------------------------------------------------------------------------


def money(value: Any) -> str:
    return str(Decimal(str(value)).quantize(CENT))


def fact_from_event(event: EventEnvelope) -> Fact | None:
    """The metric fact an event carries, or None when analytics ignores it."""
    payload = event.payload
    fact: Fact = {"id": str(event.event_id), "at": to_ms(event.occurred_at)}
    match event.event_type:
        case "OrderPlaced":
            lines = [
                [
                    line["sku"],
                    int(line["quantity"]),
                    money(Decimal(str(line["unit_price"])) * int(line["quantity"])),
                ]
                for line in payload["lines"]
            ]
            fact |= {"kind": "placed", "amount": money(payload["total"]), "lines": lines}
        case "PaymentCaptured":
            fact |= {"kind": "captured", "amount": money(payload["amount"])}
        case "PaymentDeclined":
            fact |= {"kind": "declined", "amount": money(payload["amount"])}
        case "PaymentRefunded":
            fact |= {"kind": "refunded", "amount": money(payload["amount"])}
        case "OrderCancelled":
            fact |= {"kind": "cancelled", "reason": str(payload["reason"])}
        case "OrderShipped":
            fact |= {"kind": "shipped"}
        case _:
            return None
    return fact


# --- figures ---------------------------------------------------------------------------


def empty_figures() -> dict[str, Any]:
    return {
        "placed": 0,
        "placed_value": ZERO,
        "captured": 0,
        "revenue": ZERO,
        "declined": 0,
        "refunded": 0,
        "refunded_amount": ZERO,
        "shipped": 0,
        "cancelled": {},
    }


def _add(total: str, amount: str) -> str:
    return str(Decimal(total) + Decimal(amount))


def fold_figures(figures: dict[str, Any], fact: Fact) -> dict[str, Any]:
    """A window's figures with one more fact (a new dict; the input is not changed)."""
    out = {**figures, "cancelled": dict(figures["cancelled"])}
    match fact["kind"]:
        case "placed":
            out["placed"] += 1
            out["placed_value"] = _add(out["placed_value"], fact["amount"])
        case "captured":
            out["captured"] += 1
            out["revenue"] = _add(out["revenue"], fact["amount"])
        case "declined":
            out["declined"] += 1
        case "refunded":
            out["refunded"] += 1
            out["refunded_amount"] = _add(out["refunded_amount"], fact["amount"])
        case "shipped":
            out["shipped"] += 1
        case "cancelled":
            reason = fact["reason"]
            out["cancelled"][reason] = out["cancelled"].get(reason, 0) + 1
    return out


def fold_skus(skus: dict[str, list[Any]], fact: Fact) -> dict[str, list[Any]]:
    """sku -> [quantity, revenue] with the fact's order lines added."""
    out = dict(skus)
    for sku, quantity, revenue in fact.get("lines", ()):
        old_quantity, old_revenue = out.get(sku, (0, ZERO))
        out[sku] = [old_quantity + quantity, _add(old_revenue, revenue)]
    return out


# --- the fold --------------------------------------------------------------------------


def empty_meta() -> dict[str, Any]:
    return {"watermark": 0, "processed": 0, "duplicates": 0, "late": {}, "late_events": 0}


class Analytics:
    """Folds facts into windows kept in `store` (str key -> JSON value)."""

    META = "meta"

    def __init__(self, store: MutableMapping[str, Any], config: Config) -> None:
        self.store = store
        self.config = config

    def meta(self) -> dict[str, Any]:
        return dict(self.store.get(self.META) or empty_meta())

    def apply(self, fact: Fact, now_ms: int) -> Outcome:
        store, config = self.store, self.config
        meta = self.meta()
        key = seen_key(fact)
        seen = store.get(key)
        if seen is None:
            seen = {}
        elif fact["id"] in seen:
            meta["duplicates"] += 1
            store[self.META] = meta
            return "duplicate"
        seen[fact["id"]] = 1  # in place: the store hands out decoded copies, written back below
        store[key] = seen
        at = fact["at"]
        watermark = max(meta["watermark"], min(at, now_ms + MAX_FUTURE_MS))
        grace_ms = config.grace * 1000
        late = dict(meta["late"])
        landed = missed = 0
        for family, size in config.tumbling.items():
            size_ms = size * 1000
            start = window_start(at, size_ms)
            if start + size_ms + grace_ms < watermark:
                late[family] = late.get(family, 0) + 1
                missed += 1
                continue
            wkey = window_key(family, start)
            store[wkey] = fold_figures(store.get(wkey) or empty_figures(), fact)
            landed += 1
        if fact.get("lines"):
            size_ms, step_ms = config.hop_size * 1000, config.hop_step * 1000
            hop_missed = False
            for start in hopping_starts(at, size_ms, step_ms):
                if start + size_ms + grace_ms < watermark:
                    hop_missed = True
                    continue
                kkey = sku_key(config.hop_label, start)
                store[kkey] = fold_skus(store.get(kkey) or {}, fact)
                landed += 1
            if hop_missed:
                late[config.hop_label] = late.get(config.hop_label, 0) + 1
                missed += 1
        meta.update(watermark=watermark, late=late, processed=meta["processed"] + 1)
        if missed:
            meta["late_events"] += 1
        store[self.META] = meta
        if not missed:
            return "folded"
        return "partly_late" if landed else "late"

    def expiry(self) -> dict[str, str]:
        """key prefix -> the first key to keep: every key with that prefix sorting before it
        has expired (windows `retention` after their end, event ids once no window can
        take their event)."""
        config = self.config
        watermark = self.meta()["watermark"]
        keep_ms = config.retention * 1000
        cutoffs: dict[str, str] = {}
        for family, size in config.tumbling.items():
            first = max(0, watermark - keep_ms - size * 1000)
            cutoffs[f"w/{family}/"] = window_key(family, first)
        first = max(0, watermark - keep_ms - config.hop_size * 1000)
        cutoffs[f"k/{config.hop_label}/"] = sku_key(config.hop_label, first)
        first = max(0, watermark - config.seen_keep_ms - SEEN_BUCKET_MS)
        cutoffs["s/"] = f"s/{first:013d}"
        return cutoffs


def expired_keys(keys_in_order: Iterable[str], prefix: str, first_kept: str) -> Iterator[str]:
    """The keys (sorted, all with `prefix`) that sort before `first_kept`."""
    for key in keys_in_order:
        if not key.startswith(prefix) or key >= first_kept:
            return
        yield key
