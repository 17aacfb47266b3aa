"""Prometheus metrics of a worker, served at `GET /metrics`.

What is measured where:

- events processed and handling time per agent: a faust sensor sees every event
  of every agent's stream (services, projections, indexes, dead letters) from
  the moment the stream yields it until the agent asks for the next one;
- agents held on a system error and those errors: `app.stalls`;
- dead letters: `DEAD_LETTERS.labels(agent=...).inc()` where a message is buried;
- command answers by HTTP status: counted where the answer is turned into a response;
- consumer lag per topic/partition, and per reader in messages and in seconds: set
  by `app.lag` each time it measures (from Kafka's offsets);
- store sizes: RocksDB's own estimate per partition store, read at scrape time;
- HTTP requests by route pattern, method and status, and their duration: the
  `timed_requests` middleware every request passes (web/http.py installs it);
- the worker's state (starting, running, rebalancing, stalled) and the open dead
  letters: asked at scrape time of the functions the web and agents register
  (`WORKER_STATE.follow`, `DEAD_LETTERS_OPEN.set_function`);
- the build: `shop_build_info`, the versions of the shop and what it runs on.

Names follow Prometheus's rules: a unit or what is counted at the end of the name
(`_seconds`, `_messages`), `_total` only on counters (the client adds it).
"""

from __future__ import annotations

import platform
from collections.abc import Awaitable, Callable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from time import monotonic
from typing import Any, Protocol

import aiokafka
import faust
from aiohttp import web
from faust.types import TP, EventT, StreamT
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from app.main import app

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

EVENTS_PROCESSED = Counter(
    "shop_events_processed",
    "Events an agent finished handling (retries included in one event).",
    ["agent"],
)
HANDLER_SECONDS = Histogram(
    "shop_event_handling_seconds",
    "Time from an agent receiving an event to asking for the next one.",
    ["agent"],
    buckets=LATENCY_BUCKETS,
)
DEAD_LETTERS = Counter(
    "shop_dead_letters",
    "Messages sent to the dead-letter topic; use DEAD_LETTERS.labels(agent=name).inc().",
    ["agent"],
)
COMMAND_RESULTS = Counter(
    "shop_command_results",
    "Command answers returned over HTTP, by command type and HTTP status.",
    ["command_type", "status"],
)
COMMAND_BATCH_SIZE = Histogram(
    "shop_command_batch_size",
    "Commands decided and appended together by one partition's writer (group commit).",
    ["side"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
SAGA_OPEN_ORDERS = Gauge(
    "shop_saga_open_orders",
    "Orders placed on this worker's partitions and not shipped or cancelled yet",
)
SAGA_ORDER_SECONDS = Histogram(
    "shop_saga_order_duration_seconds",
    "From an order placed on this worker to its end (outcome: shipped or cancelled).",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)
SAGA_OPEN_ORDERS_LIMIT = Gauge(
    "shop_saga_open_orders_limit",
    "SAGA_MAX_OPEN_ORDERS: POST /orders is refused (503 saga_busy) while the open orders reach it",
)
SAGA_REFUSED_ORDERS = Counter(
    "shop_saga_refused_orders",
    "Orders refused with 503 saga_busy: the saga carried SAGA_MAX_OPEN_ORDERS on this worker.",
)
CONSUMER_LAG = Gauge(
    "shop_consumer_lag_messages",
    "Messages of a topic partition its slowest reader has not processed (from Kafka's offsets).",
    ["topic", "partition"],
)
READER_LAG_MESSAGES = Gauge(
    "shop_reader_lag_messages",
    "Messages a reader has not processed, over every partition of its topics (Kafka's offsets).",
    ["reader"],
)
READER_LAG_SECONDS = Gauge(
    "shop_reader_lag_seconds",
    "Age of the oldest message a reader has not processed (its slowest partition; 0 when "
    "caught up), estimated from the log end offsets seen at each measurement.",
    ["reader"],
)
AGENT_STALLED = Gauge(
    "shop_agent_stalled",
    "1 while an agent holds its partition on a system error (retrying, nothing diverted).",
    ["agent"],
)
SYSTEM_ERRORS = Counter(
    "shop_system_errors",
    "System errors (broker, topic, timeout, store) met by an agent; each is retried.",
    ["agent", "error_type"],
)
REBALANCES = Counter(
    "shop_rebalances",
    "Partition assignments this worker received (each rebalance of the group it took part in).",
)
FOLD_BATCH_SECONDS = Histogram(
    "shop_fold_batch_seconds",
    "Time to fold one batch of one partition and write it with its offset.",
    ["fold"],
    buckets=LATENCY_BUCKETS,
)
FOLD_LAG = Gauge(
    "shop_fold_lag_messages",
    "Events of a partition not yet folded by this worker (log end - stored offset).",
    ["fold", "partition"],
)
LAG_DEGRADED = Gauge(
    "shop_lag_degraded", "1 while the total lag is above LAG_DEGRADED_THRESHOLD (or unknown)."
)
DEAD_LETTERS_OPEN = Gauge(
    "shop_dead_letters_open",
    "Dead letters not re-driven yet (status dead); reported by the worker that keeps them.",
)
HTTP_REQUEST_SECONDS = Histogram(
    "shop_http_request_duration_seconds",
    "HTTP requests served, by route pattern (`unmatched`: no route), method and status code.",
    ["route", "method", "code"],
    buckets=LATENCY_BUCKETS,
)
BUILD_INFO = Info("shop_build", "The versions this worker runs: the shop's and its runtime's.")


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


BUILD_INFO.info(
    {
        "version": _version("shop"),
        "python": platform.python_version(),
        "faust": faust.__version__,
        "aiokafka": aiokafka.__version__,
    }
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods labelled by name; any other a client sends is `other` (bounded labels)."""


def route_of(request: web.Request) -> str:
    """The route pattern a request matched (`/accounts/{account_id}`), never its path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def timed_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Counts and times every request by route pattern, method and final status code."""
    started = monotonic()
    code = 500  # an exception that is no HTTP answer: aiohttp answers 500
    try:
        response = await handler(request)
        code = response.status
        return response
    except web.HTTPException as error:
        code = error.status
        raise
    finally:
        method = request.method if request.method in METHODS else "other"
        HTTP_REQUEST_SECONDS.labels(route=route_of(request), method=method, code=str(code)).observe(
            monotonic() - started
        )


WORKER_STATES = ("starting", "running", "rebalancing", "stalled")


class WorkerStateCollector(Collector):
    """`shop_worker_state{state}`: 1 for the state the worker is in, 0 for the others,
    asked at scrape time of the function the worker registers (`follow`)."""

    def __init__(self) -> None:
        self._state: Callable[[], str] = lambda: "starting"

    def follow(self, state: Callable[[], str]) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "shop_worker_state",
            "1 for this worker's state: starting (never ready yet), running, rebalancing "
            "(ready before, not now) or stalled (an agent held on a system error).",
            labels=["state"],
        )
        now = self._state()
        for state in WORKER_STATES:
            family.add_metric([state], 1 if state == now else 0)
        yield family


WORKER_STATE = WorkerStateCollector()


class AgentSensor(faust.Sensor):
    """Counts and times the events of every agent's stream (labelled by agent name)."""

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT, event: EventT
    ) -> dict[str, Any] | None:
        return {"start": monotonic()}

    def on_stream_event_out(
        self,
        tp: TP,
        offset: int,
        stream: StreamT,
        event: EventT,
        state: dict[str, Any] | None = None,
    ) -> None:
        agent = getattr(stream, "prefix", "") or "stream"
        EVENTS_PROCESSED.labels(agent=agent).inc()
        if state is not None:
            HANDLER_SECONDS.labels(agent=agent).observe(monotonic() - state["start"])


class EstimatesKeys(Protocol):
    def estimated_keys(self) -> int | None: ...


STORES: dict[str, Callable[[], Mapping[int, EstimatesKeys]]] = {}
"""Name of a fold or command side -> its open partition stores by partition (each
registers itself: the metrics read what is open at scrape time)."""


def store_key_estimates() -> Iterator[tuple[str, int, int]]:
    """(store, partition, approximate keys) for each open partition store: RocksDB's
    `rocksdb.estimate-num-keys`, no scan."""
    for name, open_stores in list(STORES.items()):
        for partition, store in list(open_stores().items()):
            try:
                estimate = store.estimated_keys()
            except Exception:  # a store being closed by a rebalance
                continue
            if estimate is not None:
                yield name, partition, estimate


class TableSizeCollector(Collector):
    """`shop_table_keys_estimate{table,partition}` read from the stores at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "shop_table_keys_estimate",
            "Approximate rows per store partition held by this worker (RocksDB estimate).",
            labels=["table", "partition"],
        )
        for table, partition, keys in store_key_estimates():
            family.add_metric([table, str(partition)], keys)
        yield family


def render() -> tuple[bytes, str]:
    """The registry in Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


app.sensors.add(AgentSensor())
REGISTRY.register(TableSizeCollector())
REGISTRY.register(WORKER_STATE)
