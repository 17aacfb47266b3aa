"""The one readiness rule: can this worker serve reads now?

A worker serves a read (from its own tables and stores, or by forwarding it to
the owner of the key with `table_route`) once

- its producer runs (forwarding and the routed tables' metadata need it), and
- its tables are recovered: the first recovery after start-up has completed
  and no recovery (after a rebalance) is under way.

Every read path asks this one question: `web.http.owner_route` (503
`not_ready`), `web.analytics.snapshot_anywhere` (the dashboard's stream says
`unavailable`) and `web.ops.readiness()` (`recovering`), which adds the facts
of a worker that also takes commands: partitions assigned, the reply topic,
command sides and folds caught up with their logs.
"""

from __future__ import annotations

from typing import Any

from faust.types import AppT

RECOVERING = "this worker is recovering its tables"
"""Why a read is refused while `serves_reads` says no."""


def serves_reads(worker: AppT) -> bool:
    """True when `worker` can serve reads now: producer started, tables recovered."""
    tables: Any = worker.tables  # faust's TableManagerT does not declare `recovery`
    return bool(
        worker.producer.started and not worker.in_recovery and tables.recovery.completed.is_set()
    )
