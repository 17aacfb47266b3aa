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
  topic partition, from Kafka (cached for a couple of seconds); and `readers`: for
  each reader of the log on this worker (the read models' folds, the saga), the
  partitions it reads with their stored offset, the log end last seen and the lag
  between them.
- `GET /ops/overview`: the whole shop from one worker, for the dashboard's operations
  panel: each reader's lag (messages, seconds), the open dead letters, and each worker
  with its partitions, state and stalled agents (it asks each one's `/ops/health`).
- `GET /metrics`: Prometheus text format; `shop_worker_state` is `worker_state()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import ClientError, ClientTimeout
from faust.web import Request, Response, View
from yarl import URL

from agents.command_side import SIDES
from agents.engine import READERS, key_in_partition
from agents.redrives import open_dead_letters
from app import metrics
from app.command_bus import command_bus
from app.lag import LagUnavailable, lag_monitor
from app.main import app
from app.readiness import serves_reads
from app.settings import settings
from app.stalls import stalls
from tables.owners import owned_partitions, owners
from web.answers import ErrorBody, Health, LagReport, Overview, Readiness
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
    body["state"] = worker_state()
    body["dead_letters_open"] = open_dead_letters()
    return body


ASK_TIMEOUT = 2.0
"""Longest another worker may take to answer the overview's health question."""


def _base(url: URL | str) -> str:
    parsed = URL(str(url))
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"


def partitions_by_worker() -> dict[str, list[int]]:
    """Each worker's base URL -> the partitions it owns, as this worker's router knows
    the assignment (`unknown`: a partition no owner is known for yet)."""
    workers: dict[str, list[int]] = {_base(app.conf.canonical_url): []}
    for partition in range(settings.partitions):
        try:
            owner = _base(app.router.key_store(owners.name, key_in_partition(partition).encode()))
        except KeyError:
            owner = "unknown"
        workers.setdefault(owner, []).append(partition)
    return workers


async def _worker_health(url: str) -> dict[str, Any]:
    if url == _base(app.conf.canonical_url):
        return await health()
    try:
        timeout = ClientTimeout(total=ASK_TIMEOUT)
        async with app.http_client.get(f"{url}/ops/health", timeout=timeout) as answer:
            return dict(await answer.json())
    except (ClientError, TimeoutError, ValueError) as error:
        return {"state": "unreachable", "stalled": [], "error": repr(error)}


async def overview() -> dict[str, Any]:
    """Readers' lag, open dead letters, and every worker's partitions, state and stalls."""
    body: dict[str, Any] = {"served_by": _base(app.conf.canonical_url), "lag_error": None}
    try:
        report = await lag_monitor.report()
        body["readers"] = report.as_dict()["reader_lag"]
    except LagUnavailable as error:
        body["readers"], body["lag_error"] = {}, str(error)
    owned = {url: parts for url, parts in partitions_by_worker().items() if url != "unknown"}
    answers = await asyncio.gather(*(_worker_health(url) for url in owned))
    body["workers"] = [
        {
            "url": url,
            "partitions": partitions,
            "state": answer.get("state", "unreachable"),
            "stalled": answer.get("stalled", []),
        }
        for (url, partitions), answer in zip(owned.items(), answers, strict=True)
    ]
    body["dead_letters_open"] = sum(int(a.get("dead_letters_open") or 0) for a in answers)
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
        body["readers"] = {
            name: reader.progress() + reader.progress(standby=True)
            for name, reader in READERS.items()
        }
        return self.json(body)


@app.page("/ops/overview")
class OverviewView(View):
    """The whole shop's operations figures, gathered by this worker."""

    @operation(
        "Operations overview",
        tag="operations",
        answers=(Answer(200, "Readers' lag, open dead letters, every worker.", Overview),),
    )
    async def get(self, request: Request) -> Response:
        return self.json(await overview())


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
