"""Rebuild a read model's partition from its event topics, on the worker that folds it.

`shop rebuild <model>` sends one request per partition; the partition's owner
folds that partition of the event topics from offset 0 into a fresh partition
store (the live one keeps serving and folding), catches up with the live fold,
then swaps the fresh store in, in one step (agents/folds.py `FoldRunner.rebuild`),
reporting progress on the progress topic throughout. The partitions of one
request are rebuilt side by side (one actor each); their refolds run in processes
of their own, one per core at a time (agents/refold.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from agents.accounts import account_projection
from agents.analytics import analytics_windows
from agents.folds import AlreadyRebuilding, FoldRunner, Rebuilt
from agents.inventory import stock_projection
from agents.orders import orders_projection, orders_timeline
from app.main import app
from app.settings import settings
from app.topics import rebuild_progress, rebuild_requests
from models.rebuilds import REBUILDABLE, RebuildProgress, RebuildRequest
from tables.rebuildable import REBUILDABLE_FOLDS

log = logging.getLogger(__name__)

READ_MODELS: dict[str, FoldRunner] = {
    "accounts": account_projection,
    "analytics": analytics_windows,
    "orders": orders_projection,
    "stock": stock_projection,
    "timeline": orders_timeline,
}
assert set(READ_MODELS) == set(REBUILDABLE), "models/rebuilds.py names what the CLI offers"
assert all(  # the refold process finds a read model's fold by its name
    REBUILDABLE_FOLDS[name]().name == runner.fold.name for name, runner in READ_MODELS.items()
)
REPORT_EVERY = 0.5


@app.agent(rebuild_requests, name="read-model-rebuilds", concurrency=settings.partitions)
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
    runner = READ_MODELS.get(request.read_model)
    try:
        if runner is None:
            raise ValueError(f"no read model {request.read_model!r}: {sorted(READ_MODELS)}")
        await rebuild_fold(runner, partition, progress)
    except AlreadyRebuilding:
        return  # a re-sent request: the running rebuild reports
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


async def report(progress: RebuildProgress) -> None:
    await rebuild_progress.send(
        key=progress.rebuild_id.encode(), value=progress.model_dump_json().encode()
    )
