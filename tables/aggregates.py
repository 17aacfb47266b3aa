"""The command side's two tables per aggregate type: its state and its answered commands."""

from __future__ import annotations

from typing import Any, NamedTuple

from app.main import app
from app.settings import settings


def table(name: str, help: str) -> Any:
    """A DurableTable keyed by aggregate id (app/main.py makes every app.Table one)."""
    # bytes keys are stored raw, so table_route hashes them as the producer does
    return app.Table(name, partitions=settings.partitions, key_type=bytes, help=help)


class AggregateTables(NamedTuple):
    state: Any
    """aggregate id -> the aggregate's state (a dict)."""
    results: Any
    """"aggregate_id/command_id" -> the command's recorded result, for idempotency."""


def aggregate_tables(kind: str) -> AggregateTables:
    return AggregateTables(
        state=table(f"{kind}-state", f"Command side: each {kind}'s current state."),
        results=table(f"{kind}-commands", f"Command side: each {kind} command's result."),
    )
