"""Analytics endpoints: windowed figures, top SKUs, a live snapshot and its SSE stream.

    GET /analytics/summary?window=1m|10s&last=N[&until=<epoch ms|ISO time>]
    GET /analytics/top-skus?window=5m&limit=10[&until=...]
    GET /analytics/live       everything the dashboard shows, in one answer
    GET /analytics/stream     Server-Sent Events: the live snapshot every second

All figures live in one partition store, folded where partition 0 of the order
commands is decided, so every read is served there: any worker forwards the
request (`owner_route` with a key of that partition).

Why Server-Sent Events for the push: the data flows one way (server to
browser); SSE is plain HTTP (a long `text/event-stream` response) that any
proxy passes, the browser's `EventSource` reconnects by itself (with the
`retry:` we send) when a worker restarts, and it needs no library on either
side. WebSockets would add a bidirectional protocol we do not need.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from datetime import datetime
from typing import Any, cast

from aiohttp import ClientError, ClientTimeout, web
from faust.web import Request, Response, View

from agents.analytics import analytics_windows
from agents.engine import key_in_partition
from app.lag import lag_monitor
from app.main import app
from app.readiness import RECOVERING, serves_reads
from app.settings import settings
from domain.analytics import label
from tables import analytics as t
from tables.owners import owners
from tables.partition_store import PartitionStore
from web.answers import LiveFigures, TopSkus, WindowSummary
from web.http import HttpError, counted_param, handles_errors, owner_route, store_of
from web.operations import Answer, Param, counted, operation, read_answers
from web.partitions import same_node

log = logging.getLogger(__name__)

MAX_LAST = 360
MAX_LIMIT = 100
LIVE_WINDOWS = 30
"""The live view: the current 10-second window and the 29 before it (5 minutes)."""
MAIN_WINDOWS = 15
MAX_STREAMS = 64
STREAM_INTERVAL = 1.0

HOME = key_in_partition(0)
"""Routes a request to the worker that folds the analytics (partition 0 of the orders)."""
routed = owners


def figures() -> PartitionStore:
    return store_of(analytics_windows, HOME)


def _invalid(field: str, reason: str) -> HttpError:
    return HttpError(
        422,
        "invalid_request",
        f"invalid fields: {field}",
        fields=[{"field": field, "reason": reason}],
    )


def _until(request: Request, now_ms: int) -> int:
    raw = request.query.get("until")
    if raw is None or raw == "":
        return now_ms
    if _EPOCH_MS.fullmatch(raw):
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid("until", "epoch milliseconds or an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise _invalid("until", "an ISO 8601 time needs its UTC offset")
    return int(moment.timestamp() * 1000)


_EPOCH_MS = re.compile(r"[0-9]{1,15}")
UNTIL = Param(
    "until",
    "query",
    {"type": "string", "pattern": r"^([0-9]{1,15}|[0-9]{4}-.+)?$"},
    "The figures as of this moment: epoch milliseconds, or an ISO 8601 time with its UTC "
    "offset. Default: now.",
)


def _now_ms() -> int:
    return int(time.time() * 1000)


@app.page("/analytics/summary")
class SummaryView(View):
    @operation(
        "Figures by window",
        tag="analytics",
        params=(
            Param("window", "query", {"enum": list(t.families())}, "A tumbling window."),
            counted("last", 0, MAX_LAST, 10, "Closed windows before the current one."),
            UNTIL,
        ),
        answers=read_answers(Answer(200, "Orders, revenue, payments by window.", WindowSummary)),
    )
    @handles_errors
    @owner_route(routed, exact=HOME)
    async def get(self, request: Request) -> Response:
        """The last N closed windows and the current one, oldest first."""
        families = t.families()
        family = request.query.get("window", label(t.config.window))
        if family not in families:
            raise _invalid("window", f"one of {', '.join(families)}")
        last = counted_param(request, "last", 10, 0, MAX_LAST)
        now = _now_ms()
        return self.json(t.summary(figures(), family, last, _until(request, now), now))


@app.page("/analytics/top-skus")
class TopSkusView(View):
    @operation(
        "Top SKUs",
        tag="analytics",
        params=(
            Param("window", "query", {"enum": [t.config.hop_label]}, "The hopping window."),
            counted("limit", 1, MAX_LIMIT, 10, "SKUs in each ranking."),
            UNTIL,
        ),
        answers=read_answers(Answer(200, "By quantity and by revenue.", TopSkus)),
    )
    @handles_errors
    @owner_route(routed, exact=HOME)
    async def get(self, request: Request) -> Response:
        """Top SKUs by quantity and by revenue over the hopping window ending soonest."""
        family = request.query.get("window", t.config.hop_label)
        if family != t.config.hop_label:
            raise _invalid("window", f"{t.config.hop_label} (the hopping window)")
        limit = counted_param(request, "limit", 10, 1, MAX_LIMIT)
        return self.json(t.top(figures(), limit, _until(request, _now_ms())))


# --- pipeline health ---------------------------------------------------------------------


class FactsRate:
    """Facts folded per second: the fold's processed counter over the last few seconds
    of reads (the dashboard reads every second)."""

    SPAN = 5.0

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def update(self, processed: int, now: float) -> float:
        if self.samples and processed < self.samples[-1][1]:  # a rebuild, another owner
            self.samples.clear()
        self.samples.append((now, processed))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.SPAN:
            self.samples.popleft()
        since, before = self.samples[0]
        return round((processed - before) / (now - since), 2) if now > since else 0.0


facts_rate = FactsRate()


async def local_snapshot() -> dict[str, Any]:
    """What the dashboard shows; only meaningful on the owner of the analytics partition.

    `health.lag` is the consumer group's lag from the app's one lag reader
    (`app.lag.lag_monitor`, the measurement `/ops/lag` shows, from the same cache):
    its total and its lag per topic, topic names without the prefix. The batched
    folds' own progress is not in it: `/ops/lag`'s `folds` and `/ops/health`'s
    `reader_lag` report that, per worker."""
    now = _now_ms()
    live, main = label(t.config.live_window), label(t.config.window)
    store = figures()
    info = t.meta(store)
    return {
        "server_time_ms": now,
        "live": t.summary(store, live, LIVE_WINDOWS - 1, now, now),
        "main": t.summary(store, main, MAIN_WINDOWS - 1, now, now),
        "top": t.top(store, 10, now),
        "health": {
            "facts_per_second": facts_rate.update(info["processed"], time.monotonic()),
            "facts_processed": info["processed"],
            "duplicates_ignored": info["duplicates"],
            "late": info["late"],
            "late_events": info["late_events"],
            "watermark_ms": info["watermark"],
            "lag": await lag_monitor.summary(settings.topic_prefix),
            "served_by": str(app.conf.canonical_url),
        },
    }


@app.page("/analytics/live")
class LiveView(View):
    @operation(
        "The live figures",
        tag="analytics",
        answers=read_answers(Answer(200, "What the dashboard shows.", LiveFigures)),
    )
    @handles_errors
    @owner_route(routed, exact=HOME)
    async def get(self, request: Request) -> Response:
        return self.json(await local_snapshot())


class Unavailable(Exception):
    pass


async def snapshot_anywhere() -> dict[str, Any]:
    """The live snapshot, computed here when this worker owns the figures, else fetched."""
    if not serves_reads(app):
        raise Unavailable(RECOVERING)
    try:
        owner = app.router.key_store(routed.name, HOME.encode())
    except KeyError:
        raise Unavailable("the owner of the analytics is not known yet") from None
    if same_node(owner):
        try:
            return await local_snapshot()
        except HttpError as error:  # the store is not open here yet (a rebalance)
            raise Unavailable(error.reason) from None
    try:
        async with app.http_client.get(
            owner.with_path("/analytics/live"), timeout=ClientTimeout(total=3.0)
        ) as response:
            if response.status != 200:
                raise Unavailable(f"the owner answered {response.status}")
            return cast(dict[str, Any], await response.json())
    except (ClientError, TimeoutError) as error:
        raise Unavailable(f"the owner is not reachable ({error!r})") from None


_streams = {"open": 0}


@app.page("/analytics/stream")
class StreamView(View):
    @operation(
        "The live figures, pushed",
        tag="analytics",
        answers=(
            Answer(
                200,
                "Server-Sent Events, never ending: `event: figures` each second (data: the "
                "live figures), `event: unavailable` while there are none.",
                {"type": "string"},
                media=("text/event-stream",),
            ),
            Answer(503, "`too_many_streams`."),
        ),
    )
    async def get(self, request: Request) -> Any:
        """`event: figures` with the live snapshot each second; `event: unavailable` while
        no figures can be had (the client shows its data as stale)."""
        if _streams["open"] >= MAX_STREAMS:
            return self.json(
                {"error": "too_many_streams", "reason": "too many open streams"}, status=503
            )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        raw = cast(web.Request, request)
        await response.prepare(raw)
        _streams["open"] += 1
        try:
            await response.write(b"retry: 1000\n\n")
            while True:
                try:
                    body = json.dumps(await snapshot_anywhere(), separators=(",", ":"))
                    message = f"event: figures\ndata: {body}\n\n"
                except Unavailable as why:
                    reason = json.dumps({"reason": str(why), "server_time_ms": _now_ms()})
                    message = f"event: unavailable\ndata: {reason}\n\n"
                await response.write(message.encode())
                await asyncio.sleep(STREAM_INTERVAL)
        except ConnectionError:  # the browser went away
            pass
        finally:
            _streams["open"] -= 1
        return response
