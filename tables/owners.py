"""Who owns a partition: the table whose assignment every reader of the log follows.

Never written, so kept in memory: nothing to open at a start (in RocksDB it was a
database per partition, opened to read offsets that never move). Every topic of the
system has the same partition count, so faust assigns partition p of all of them to
one worker, and with it this table's partition p: the owner of p decides the
commands of the aggregates in p, runs every reader of p (read models, command-side
tails, saga services) and serves its reads. faust's `table_route` needs a table to
look that owner up; this is it. Its changelog is the only data topic faust's own
consumer subscribes to (besides rebuild requests): the records themselves are read
by the engine (agents/engine.py), which follows this table's active partitions.
"""

from __future__ import annotations

from typing import Any, cast

from app.main import app
from app.metrics import REBALANCES
from app.settings import settings

# bytes keys are stored raw, so table_route hashes them as the producer does
owners: Any = app.Table(
    "owners",
    partitions=settings.partitions,
    key_type=bytes,
    store="memory://",
    help="Routing only: partition p's owner decides and folds the keys in p.",
)


async def _count_rebalance(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
    REBALANCES.inc()


app.on_partitions_assigned.connect(cast(Any, _count_rebalance))


def owned_partitions() -> set[int]:
    """The partitions this worker owns now (the owners table's active partitions;
    its standby partitions are not among them)."""
    topic = owners.changelog_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


def standby_partitions() -> set[int]:
    """The partitions this worker stands by for: faust's assignor gives each partition
    SHOP_STANDBY_REPLICAS workers besides its owner, this table's standby partitions. The
    readers and command sides keep those stores folded (warm), so a takeover folds only
    the tail of the log."""
    topic = owners.changelog_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_standbys() if tp.topic == topic}


def partitions_in(tps: set[Any]) -> set[int]:
    """The owners table's partitions among `tps` (a revocation's, say): the partitions
    whose readers and writers they concern."""
    topic = owners.changelog_topic.get_topic_name()
    return {tp.partition for tp in tps if tp.topic == topic}
