"""The command side's two tables per aggregate type: its state and its answered commands."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from faust import Table
from faust.types import FutureMessage

from app.main import app
from app.settings import settings


def table(name: str, help: str) -> Any:
    # bytes keys are stored raw, so table_route hashes them as the producer does
    return app.Table(name, partitions=settings.partitions, key_type=bytes, help=help)


class CommandSideTable(Table):
    """A table whose writes can be awaited until their changelog records are in Kafka.

    faust's `table[key] = value` sends the changelog record in the background and
    drops its future; the command side must know its state is durable before it
    publishes the events (agents/commands.py), and waiting for just these records
    is far cheaper than flushing the whole producer.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unconfirmed: list[FutureMessage] = []

    def on_key_set(self, key: Any, value: Any) -> None:
        # faust's Table.on_key_set, keeping the changelog record's future
        written = self.send_changelog(self.partition_for_key(key), key, value)
        partition = written.message.partition
        assert partition is not None
        self._maybe_set_key_ttl(key, partition)
        self._sensor_on_set(self, key, value)
        self.unconfirmed.append(written)

    def forget_writes(self) -> None:
        """Nothing waits for the writes so far (faust still delivers them)."""
        self.unconfirmed.clear()

    async def confirm_writes(self) -> None:
        """Wait until every write so far is acknowledged by Kafka."""
        written, self.unconfirmed = self.unconfirmed, []
        if written:
            await asyncio.gather(*written)


def command_side_table(name: str, help: str) -> CommandSideTable:
    created = CommandSideTable(
        app,
        name=name,
        beacon=app.tables.beacon,
        partitions=settings.partitions,
        key_type=bytes,
        help=help,
    )
    app.tables.add(created)
    return created


class AggregateTables(NamedTuple):
    state: Any
    """aggregate id -> the aggregate's state (a dict)."""
    results: Any
    """"aggregate_id/command_id" -> the command's recorded result, for idempotency."""


def aggregate_tables(kind: str) -> AggregateTables:
    return AggregateTables(
        state=command_side_table(f"{kind}-state", f"Command side: each {kind}'s current state."),
        results=command_side_table(
            f"{kind}-commands", f"Command side: each {kind} command's result."
        ),
    )
