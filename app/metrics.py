"""Prometheus metrics of a worker, served at `GET /metrics`.

What is measured where:

- events processed and handling time per agent: a faust sensor sees every event
  of every agent's stream (services, projections, indexes, dead letters) from
  the moment the stream yields it until the agent asks for the next one;
- agents held on a system error and those errors: `app.stalls`;
- dead letters: `DEAD_LETTERS.labels(agent=...).inc()` where a message is buried;
- command answers by HTTP status: counted where the answer is turned into a response;
- consumer lag per topic/partition: set by `app.lag` each time it measures;
- store sizes: RocksDB's own estimate per partition store, read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from time import monotonic
from typing import Any, Protocol

import faust
from faust.types import TP, EventT, StreamT
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
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
CONSUMER_LAG = Gauge(
    "shop_consumer_lag",
    "Messages not yet committed by the app's consumer group, per topic partition.",
    ["topic", "partition"],
)
CONSUMER_LAG_TOTAL = Gauge(
    "shop_consumer_lag_total_messages", "Sum of the consumer group's lag over its input topics."
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
    "shop_fold_lag",
    "Events of a partition not yet folded by this worker (log end - stored offset).",
    ["fold", "partition"],
)
LAG_DEGRADED = Gauge(
    "shop_lag_degraded", "1 while the total lag is above LAG_DEGRADED_THRESHOLD (or unknown)."
)


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
