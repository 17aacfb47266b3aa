"""A faust Table whose changelog records are in Kafka before any input offset is committed.

faust sends a table write's changelog record in the background and, before
committing the input offsets, flushes its producer at best (it gives up after
0.1 s, and does not count the record being sent): an offset could be committed
for a row Kafka never got, and after a crash and a restore from the changelog
that row was gone for good while its event was never redelivered. Every table
of the app is a DurableTable: it keeps the futures of its changelog records,
and the producer's flush (which faust runs before each commit) waits for them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust import Table
from faust.types import FutureMessage


class DurableTable(Table):
    """A faust Table that knows which of its changelog records Kafka has not acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._not_committed: list[FutureMessage] = []
        """Every changelog record since the last commit: the commit waits for them."""
        self._not_confirmed: list[FutureMessage] = []
        """Those a command handler has not waited for yet (confirm_writes)."""

    def on_key_set(self, key: Any, value: Any) -> None:
        # faust's Table.on_key_set, keeping the changelog record's future
        written = self.send_changelog(self.partition_for_key(key), key, value)
        self._maybe_set_key_ttl(key, self._keep(written))
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        # faust's Table.on_key_del, keeping the changelog record's future
        written = self.send_changelog(
            self.partition_for_key(key), key, value=None, value_serializer="raw"
        )
        self._maybe_del_key_ttl(key, self._keep(written))
        self._sensor_on_del(self, key)

    def _keep(self, written: FutureMessage) -> int:
        """Remember the record; its partition (the one faust chose for the key)."""
        partition = written.message.partition
        assert partition is not None
        self._not_committed.append(written)
        self._not_confirmed.append(written)
        return partition

    def forget_writes(self) -> None:
        """confirm_writes will not wait for the writes so far (the commit still does)."""
        self._not_confirmed.clear()

    async def confirm_writes(self) -> None:
        """Wait until every write so far is acknowledged by Kafka."""
        written, self._not_confirmed = self._not_confirmed, []
        if written:
            await asyncio.gather(*written)

    async def wait_durable(self) -> None:
        """Wait until every write since the last call is acknowledged (before a commit)."""
        written, self._not_committed = self._not_committed, []
        if written:
            await asyncio.gather(*written)
