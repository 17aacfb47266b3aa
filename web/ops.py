"""Operations endpoints: readiness, health with consumer lag, lag, Prometheus metrics.

- `GET /health`: 200 once this worker owns partitions, has folded each one's
  log to its end (`catching_up` names the command sides and folds that have
  not) and takes commands (what start-up scripts and tests wait for); 503 before.
- `GET /ops/health`: always 200 while the worker answers; `status` is `starting`,
  `ok`, or `degraded` (total consumer lag, or the batched folds' lag on this
  worker (`reader_lag`), above LAG_DEGRADED_THRESHOLD, or lag not measurable, or
  an agent held on a system error: `stalled`), with the lag's total and
  threshold and the stalled agents.
- `GET /ops/ready`: the readiness probe: 200 when `/ops/health` says ok, else 503.
- `GET /ops/lag`: the consumer group's committed and end offsets and lag per
  topic partition, from Kafka (cached for a couple of seconds); and `folds`: for
  each batched fold, the partitions folded on this worker with their stored
  offset, the log end last seen and the lag between them.
- `GET /metrics`: Prometheus text format; `shop_worker_state` is `worker_state()`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from faust.web import Request, Response, View

from agents.command_side import SIDES
from agents.engine import READERS
from app import metrics
from app.command_bus import command_bus
from app.lag import LagUnavailable, lag_monitor
from app.main import app
from app.readiness import serves_reads
from app.stalls import stalls
from tables.owners import owned_partitions
from web.answers import ErrorBody, Health, LagReport, Readiness
from web.operations import RETRY_AFTER, Answer, operation


def readiness() -> dict[str, object]:
    """The readiness rule (`app.readiness.serves_reads`: `recovering` while it says no)
    and what a worker that takes commands needs besides: partitions assigned, its reply
    topic, and every command side and fold caught up with its log (`catching_up`)."""
    recovering = not serves_reads(app)
    actives = sorted(f"{tp.topic}:{tp.partition}" for tp in app.assignor.assigned_actives())
    behind = {name: side.catching_up() for name, side in SIDES.items()}
    behind.update((name, reader.catching_up()) for name, reader in READERS.items())
    catching_up = {name: partitions for name, partitions in behind.items() if partitions}
    ready = not recovering and bool(actives) and command_bus.reply_topic != "" and not catching_up
    return {
        "status": "ok" if ready else "starting",
        "recovering": recovering,
        "catching_up": catching_up,
        "active_partitions": len(actives),
        "partitions": sorted(owned_partitions()),
        "web": str(app.conf.canonical_url),
    }


_was_ready = [False]
"""Whether this process was ready once: after that, not ready is a rebalance."""


def worker_state() -> str:
    """stalled (an agent held on a system error), running (ready), rebalancing (ready
    before, not now: a rebalance, its recovery, its catching up) or starting."""
    if stalls.current():
        return "stalled"
    if readiness()["status"] == "ok":
        _was_ready[0] = True
        return "running"
    return "rebalancing" if _was_ready[0] else "starting"


metrics.WORKER_STATE.follow(worker_state)


async def health() -> dict[str, Any]:
    """readiness(), consumer lag and stalled agents; `degraded` on either."""
    body: dict[str, Any] = readiness()
    lag = await lag_monitor.health()
    body["lag"] = lag.as_dict()
    body["stalled"] = stalls.current()
    body["reader_lag"] = reader_lag = sum(
        row["lag"] or 0 for reader in READERS.values() for row in reader.progress()
    )
    behind = reader_lag > lag_monitor.threshold
    if body["status"] == "ok" and (lag.degraded or body["stalled"] or behind):
        body["status"] = "degraded"
    return body


@app.page("/health")
class HealthView(View):
    """200 when this worker owns partitions, has recovered its tables and takes commands."""

    @operation(
        "Is this worker ready?",
        tag="operations",
        answers=(
            Answer(200, "Ready: `status` is ok.", Readiness),
            Answer(503, "Starting: `catching_up` says what is still folding.", Readiness),
        ),
    )
    async def get(self, request: Request) -> Response:
        body = readiness()
        return self.json(body, status=200 if body["status"] == "ok" else 503)


@app.page("/ops/health")
class OpsHealthView(View):
    """Always 200 while the worker answers: `status` is starting, ok or degraded."""

    @operation(
        "Health, with lag",
        tag="operations",
        answers=(Answer(200, "`status`: starting, ok or degraded (lag, stalls).", Health),),
    )
    async def get(self, request: Request) -> Response:
        return self.json(await health())


@app.page("/ops/ready")
class ReadyView(View):
    """Readiness probe: 200 when ready and not degraded by lag, else 503."""

    @operation(
        "Readiness probe",
        tag="operations",
        answers=(
            Answer(200, "Ready and not degraded.", Health),
            Answer(503, "Starting or degraded.", Health, headers=(RETRY_AFTER,)),
        ),
    )
    async def get(self, request: Request) -> Response:
        body = await health()
        return self.json(
            body,
            status=200 if body["status"] == "ok" else 503,
            headers=None if body["status"] == "ok" else {"Retry-After": "5"},
        )


@app.page("/ops/lag")
class LagView(View):
    """The readers' lag per topic partition, measured from Kafka's offsets."""

    @operation(
        "Consumer lag",
        tag="operations",
        answers=(
            Answer(
                200,
                "Per topic partition (its slowest reader), and each reader's on this worker.",
                LagReport,
            ),
            Answer(
                503,
                "`lag_unavailable`: Kafka did not answer.",
                ErrorBody,
                headers=(RETRY_AFTER,),
            ),
        ),
    )
    async def get(self, request: Request) -> Response:
        try:
            report = await lag_monitor.report()
        except LagUnavailable as error:
            return self.json(
                {"error": "lag_unavailable", "reason": str(error)},
                status=503,
                headers={"Retry-After": "2"},
            )
        body = report.as_dict()
        body["threshold"] = lag_monitor.threshold
        body["degraded"] = body["total"] > lag_monitor.threshold
        body["readers"] = {name: reader.progress() for name, reader in READERS.items()}
        return self.json(body)


@app.page("/metrics")
class MetricsView(View):
    """Prometheus text format; refreshes the lag gauges (cached) first."""

    @operation(
        "Prometheus metrics",
        tag="operations",
        answers=(
            Answer(
                200,
                "The Prometheus text exposition format.",
                {"type": "string"},
                media=("text/plain",),
            ),
        ),
    )
    async def get(self, request: Request) -> Response:
        # unmeasurable lag shows as shop_lag_degraded 1 without per-partition series
        with contextlib.suppress(LagUnavailable):
            await lag_monitor.report()
        payload, content_type = metrics.render()
        return self.bytes(payload, headers={"Content-Type": content_type})
