"""Who decides a key: the table every request that must reach an aggregate's owner routes by.

Never written. Every topic has the same partition count and every worker
subscribes to all of them, so faust assigns partition p of every topic to one
worker: the owner of this table's partition p is the worker that decides the
commands of the aggregates in p and folds their read models. faust's
`table_route` needs a table to look that owner up; this is it.
"""

from __future__ import annotations

from typing import Any

from app.main import app
from app.settings import settings

# bytes keys are stored raw, so table_route hashes them as the producer does
owners: Any = app.Table(
    "owners",
    partitions=settings.partitions,
    key_type=bytes,
    help="Routing only: partition p's owner decides and folds the keys in p.",
)
