"""Filling a read model's gap from the log: one aggregate's events between two versions.

A fold that meets an event past its row's next version (the row was lost, or
restored from an older changelog) never folds past it: `guarded` reads the
missing versions of that aggregate from the event's own partition, before the
event's offset, and folds them first. The log holds every version, so this
repairs the row; if the log itself lacks one, that is a write-side defect and
the event is dead-lettered with `GapInLog` as its cause.
"""

from __future__ import annotations

from app.log_reader import read_range
from models.envelope import EventEnvelope
from tables.read_models import Gap, GapInLog

__all__ = ["GapInLog", "events_between"]


async def events_between(topic: str, partition: int, before: int, gap: Gap) -> list[bytes]:
    """The raw events of `gap.aggregate_id` with versions have+1 .. got-1, in order,
    from `topic`'s `partition` below offset `before` (O(that partition): gaps are rare)."""
    found: dict[int, bytes] = {}
    for message in await read_range(topic, partition, 0, before, key=gap.aggregate_id.encode()):
        version = EventEnvelope.model_validate_json(message.value).aggregate_version
        if gap.have < version < gap.got:
            found.setdefault(version, message.value)
    wanted = range(gap.have + 1, gap.got)
    missing = [v for v in wanted if v not in found]
    if missing:
        raise GapInLog(f"{gap}; the log of {topic}[{partition}] lacks versions {missing[:20]}")
    return [found[v] for v in wanted]
