"""Messages of a read-model rebuild: the request per partition, and its progress."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

REQUESTS_TOPIC = "read-models.rebuilds"
"""Co-partitioned with the event topics: partition p's request reaches the owner of p."""
PROGRESS_TOPIC = "read-models.rebuild-progress"
"""One partition: the `shop rebuild` command reads every worker's reports in order."""

REBUILDABLE = ("accounts", "analytics", "orders", "stock", "timeline")
"""`accounts`: each account's state and history; `analytics`: the windowed figures
(from analytics.facts); `orders`: orders by id; `stock`: each SKU's stock;
`timeline`: each order's saga steps."""
ONE_PARTITION = frozenset({"analytics"})
"""Read models folded from a one-partition topic, where partition 0 is: one request."""


class RebuildRequest(BaseModel):
    rebuild_id: str
    read_model: str


class RebuildProgress(BaseModel):
    rebuild_id: str
    read_model: str
    partition: int
    phase: Literal["replaying", "switched", "failed"]
    read: int = 0
    """Events folded so far."""
    total: int = 0
    """Offsets in the partition when the replay started (grows while it runs)."""
    skipped: int = 0
    """Events that could not be decoded or folded (the live side dead-letters them)."""
    written: int = 0
    deleted: int = 0
    unchanged: int = 0
    error: str | None = None
