"""Rebuild a read model's partition from its event topic, on the worker that owns it.

`shop rebuild <model>` sends one request per partition; the partition's owner
replays that event partition from offset 0 aside (the live model keeps serving),
catches up with the live projection, then switches in one step and reports
progress on the progress topic throughout. A batched fold (agents/folds.py)
folds into a fresh partition store and swaps it in; a faust-table read model
folds into dicts and switches its rows (tables/rebuild.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from agents.accounts import account_projection
from agents.folds import FoldRunner, Rebuilt
from app.kafka_clients import client_options
from app.main import app
from app.settings import settings
from app.topics import rebuild_progress, rebuild_requests
from models.rebuilds import RebuildProgress, RebuildRequest
from models.upcasting import decode_event
from tables import orders
from tables.ranges import rows_in_partition
from tables.rebuild import ReadModel, Switched, ahead_of, fresh_tables, switch

log = logging.getLogger(__name__)

READ_MODELS: dict[str, ReadModel | FoldRunner] = {
    "accounts": account_projection,
    "orders": ReadModel("orders", "orders.events", orders.BY_ID, orders.project),
}
CATCH_UP_ROUNDS = 5
"""Live rows still ahead after this many reads to the end are corrupt, not new."""
REPORT_EVERY = 0.5


@app.agent(rebuild_requests, name="read-model-rebuilds")
async def rebuild_read_models(stream: Any) -> None:
    async for event in stream.events():
        try:
            request = RebuildRequest.model_validate_json(event.value)
        except ValueError:
            log.error("ignoring a malformed rebuild request: %r", event.value[:200])
            continue
        await rebuild_partition(request, event.message.partition)


async def rebuild_partition(request: RebuildRequest, partition: int) -> None:
    progress = RebuildProgress(
        rebuild_id=request.rebuild_id,
        read_model=request.read_model,
        partition=partition,
        phase="replaying",
    )
    model = READ_MODELS.get(request.read_model)
    try:
        if model is None:
            raise ValueError(f"no read model {request.read_model!r}: {sorted(READ_MODELS)}")
        if isinstance(model, FoldRunner):
            await rebuild_fold(model, partition, progress)
        else:
            await Replay(model, partition, progress).run()
    except Exception as exc:  # reported to the operator, who can run it again
        log.exception("rebuild %s of partition %d failed", request.rebuild_id, partition)
        progress.phase = "failed"
        progress.error = f"{type(exc).__name__}: {exc}"
    await report(progress)


async def rebuild_fold(runner: FoldRunner, partition: int, progress: RebuildProgress) -> None:
    reported = 0.0

    async def report_now(counts: Rebuilt, end: int) -> None:
        nonlocal reported
        progress.read, progress.skipped, progress.total = counts.read, counts.skipped, end
        if time.monotonic() - reported > REPORT_EVERY:
            reported = time.monotonic()
            await report(progress)

    counts = await runner.rebuild(partition, report_now)
    progress.read, progress.skipped = counts.read, counts.skipped
    progress.written, progress.deleted = counts.written, counts.deleted
    progress.unchanged = counts.unchanged
    progress.phase = "switched"
    log.info(
        "rebuilt %s partition %d: %d events, %d rows written, %d deleted, %d unchanged",
        runner.fold.name,
        partition,
        counts.read,
        counts.written,
        counts.deleted,
        counts.unchanged,
    )


class Replay:
    """One partition's rebuild: read from 0, catch up, switch."""

    def __init__(self, model: ReadModel, partition: int, progress: RebuildProgress) -> None:
        self.model = model
        self.partition = partition
        self.progress = progress
        self.tp = TopicPartition(settings.topic(model.events), partition)
        self.rebuilt = fresh_tables(model)
        self.reported = 0.0

    async def run(self) -> None:
        isolation = "read_committed" if app.in_transaction else "read_uncommitted"
        consumer = AIOKafkaConsumer(
            **client_options(), enable_auto_commit=False, isolation_level=isolation
        )
        await consumer.start()
        try:
            consumer.assign([self.tp])
            await consumer.seek_to_beginning(self.tp)
            primary = self.model.tables[self.model.primary]
            for round_ in range(CATCH_UP_ROUNDS):
                await self.read_to_end(consumer)
                # from here to the switch: no await, so the live projection cannot interleave
                live = list(rows_in_partition(primary, self.partition))
                if round_ == CATCH_UP_ROUNDS - 1 or not ahead_of(
                    live, self.rebuilt[self.model.primary]
                ):
                    break
                await asyncio.sleep(0.2)  # the live projection folded newer events: read them
            self.switch()
        finally:
            await consumer.stop()

    async def read_to_end(self, consumer: AIOKafkaConsumer) -> None:
        end = (await consumer.end_offsets([self.tp]))[self.tp]
        self.progress.total = end
        while await consumer.position(self.tp) < end:
            batches = await consumer.getmany(self.tp, timeout_ms=500, max_records=2000)
            for record in batches.get(self.tp, []):
                self.fold(record.value)
            if time.monotonic() - self.reported > REPORT_EVERY:
                self.reported = time.monotonic()
                await report(self.progress)

    def fold(self, raw: bytes | None) -> None:
        try:
            self.model.fold(decode_event(raw or b""), self.rebuilt)
        except Exception:  # the live projection dead-letters these; a rebuild skips them
            self.progress.skipped += 1
            return
        self.progress.read += 1

    def switch(self) -> None:
        owned = app.consumer.assignment()
        if TP(self.tp.topic, self.partition) not in owned:
            raise RuntimeError(f"partition {self.partition} moved to another worker; run again")
        total = Switched()
        for name, table in self.model.tables.items():
            live = list(rows_in_partition(table, self.partition))
            counts = switch(table, live, self.rebuilt[name])
            total.written += counts.written
            total.deleted += counts.deleted
            total.unchanged += counts.unchanged
        self.progress.written = total.written
        self.progress.deleted = total.deleted
        self.progress.unchanged = total.unchanged
        self.progress.phase = "switched"
        log.info(
            "rebuilt %s partition %d: %d events, %d rows written, %d deleted, %d unchanged",
            self.model.name,
            self.partition,
            self.progress.read,
            total.written,
            total.deleted,
            total.unchanged,
        )


async def report(progress: RebuildProgress) -> None:
    await rebuild_progress.send(
        key=progress.rebuild_id.encode(), value=progress.model_dump_json().encode()
    )
