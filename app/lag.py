"""Lag of the app's readers of the log, measured from Kafka's offsets.

Every reader on the engine (agents/engine.py: read models, saga services,
analytics, dead letters) commits the positions it stored to a progress group of
its own (`progress_group`). For every partition of every topic read: the
slowest reader's committed offset (`AIOKafkaAdminClient.list_consumer_group_offsets`,
one request per reader), the partition's end offset (a consumer without a
group), and the difference. The numbers come from the broker, not from in-app
counters, so they include partitions owned by other workers and messages no
worker has fetched yet.

This is the app's one lag reader: `/ops/lag` shows its report, `/ops/health`
and `/ops/ready` its health, `/metrics` its gauges, and the dashboard
(`/analytics/live`) its summary (`LagMonitor.summary`: the same total, per topic).

Lag per reader is given in messages and in seconds. The seconds are the age of the
oldest message the reader has not processed, read from no message: each
measurement keeps the log end offsets it saw with their time (`EndHistory`), so
the time the log end passed a reader's position (interpolated between two
measurements) is when the message at that position was written. It costs what
the lag in messages costs; its precision is the interval between measurements
(a few seconds), and a reader further behind than the history kept
(`LAG_HISTORY_SECONDS`) shows at least that.

A measurement is cached briefly (`LAG_CACHE_SECONDS`), so all of them stay
cheap however often they are asked, and agree within that age. A timer
measures every few seconds and logs a warning when the total crosses
`LAG_DEGRADED_THRESHOLD`, and an info when it is back under it: once per
crossing, not per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app import metrics
from app.kafka_clients import client_options
from app.main import app
from app.settings import settings
from app.topics import CATALOG

log = logging.getLogger(__name__)

LAG_CACHE_SECONDS = 2.0
"""A measurement younger than this is reused."""
LAG_CHECK_INTERVAL = 5.0
"""Seconds between the timer's measurements (the alert log)."""
KAFKA_TIMEOUT = 5.0
"""Longest wait for one round of offset requests."""
LAG_HISTORY_SECONDS = 900.0
"""How long the log ends seen are kept: a reader further behind shows at least this."""
LAG_HISTORY_SAMPLES = 512
"""At most this many distinct log ends kept per partition (memory stays bounded)."""


# --- arithmetic ------------------------------------------------------------------


def partition_lag(committed: int | None, end: int, start: int = 0) -> int:
    """Messages the group has still to process in one partition.

    `committed` is the next offset the group will read (None or negative: the
    group never committed here, so it starts at the log start `start`, as
    faust's `auto_offset_reset="earliest"` does). A committed offset below the
    log start (retention removed the messages) also restarts at `start`.
    """
    position = start if committed is None or committed < 0 else max(committed, start)
    return max(0, end - position)


READERS: dict[str, tuple[str, ...]] = {}
"""Progress group of every reader of this worker -> the topics it reads (each reader
registers itself: agents/engine.py)."""


def progress_group(reader: str) -> str:
    """The consumer group a reader commits its stored positions to."""
    return f"{settings.app_id}-{reader}"


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    """The slowest reader's committed offset (the next to read); None if one never
    committed."""
    end: int
    """The offset the next message written will get (the high watermark)."""
    lag: int
    reader: str | None = None
    """The reader that offset is from (the one furthest behind)."""


@dataclass(frozen=True)
class ReaderLag:
    messages: int
    """Not yet processed, over every partition of the reader's topics."""
    seconds: float
    """Age of the oldest of them (its slowest partition's); 0 when caught up."""


@dataclass(frozen=True)
class LagReport:
    group: str
    partitions: list[PartitionLag]
    measured_at: float = field(default_factory=time.time)
    """Unix time of the measurement."""
    readers: dict[str, ReaderLag] = field(default_factory=dict)
    """Each reader's own lag (`partitions` has the slowest reader's per partition)."""

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    def by_topic(self) -> dict[str, int]:
        topics: dict[str, int] = {}
        for p in self.partitions:
            topics[p.topic] = topics.get(p.topic, 0) + p.lag
        return topics

    def summary(self, prefix: str = "") -> dict[str, Any]:
        """The report in brief, as the dashboard shows it: `total` and `by_topic` (the
        lag per topic, each name without `prefix`), the same numbers as `as_dict`'s
        `total` and `topics`."""
        return {
            "total": self.total,
            "by_topic": {topic.removeprefix(prefix): lag for topic, lag in self.by_topic().items()},
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "measured_at": self.measured_at,
            "total": self.total,
            "topics": self.by_topic(),
            "reader_lag": {
                # whole seconds: the estimate is good to a measurement interval, no finer
                name: {"messages": lag.messages, "seconds": round(lag.seconds)}
                for name, lag in sorted(self.readers.items())
            },
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "committed": p.committed,
                    "end": p.end,
                    "lag": p.lag,
                    "reader": p.reader,
                }
                for p in self.partitions
            ],
        }


def compute(
    group: str,
    partitions: Iterable[TopicPartition],
    committed: Mapping[TopicPartition, int | None],
    ends: Mapping[TopicPartition, int],
    starts: Mapping[TopicPartition, int] | None = None,
    measured_at: float | None = None,
    readers: Mapping[TopicPartition, str] | None = None,
) -> LagReport:
    """The report for `partitions` (sorted by topic, partition) from raw offsets."""
    starts = starts or {}
    readers = readers or {}
    rows = []
    for tp in sorted(set(partitions), key=lambda tp: (tp.topic, tp.partition)):
        offset = committed.get(tp)
        if offset is not None and offset < 0:
            offset = None
        end = ends.get(tp, 0)
        lag = partition_lag(offset, end, starts.get(tp, 0))
        rows.append(PartitionLag(tp.topic, tp.partition, offset, end, lag, readers.get(tp)))
    return LagReport(group, rows, time.time() if measured_at is None else measured_at)


def is_degraded(total: int | None, threshold: int) -> bool:
    """Degraded when the total lag is above the threshold, or could not be measured."""
    return total is None or total > threshold


def crossing(was_degraded: bool, total: int | None, threshold: int) -> str | None:
    """ "degraded" or "recovered" when this measurement crosses the threshold, else None."""
    now = is_degraded(total, threshold)
    if now and not was_degraded:
        return "degraded"
    if was_degraded and not now:
        return "recovered"
    return None


@dataclass
class EndSeen:
    """A log end offset, and the first and last time a measurement saw it."""

    end: int
    first: float
    last: float


class EndHistory:
    """The log end offsets each measurement saw, per partition: when the log end passed
    an offset, hence when the message at that offset was written, reading no message."""

    def __init__(
        self, horizon: float = LAG_HISTORY_SECONDS, samples: int = LAG_HISTORY_SAMPLES
    ) -> None:
        self.horizon = horizon
        self.samples = samples
        self._seen: dict[TopicPartition, list[EndSeen]] = {}

    def add(self, ends: Mapping[TopicPartition, int], at: float) -> None:
        for tp, end in ends.items():
            seen = self._seen.setdefault(tp, [])
            if seen and end < seen[-1].end:  # the topic was recreated: its history is void
                seen.clear()
            if seen and seen[-1].end == end:
                seen[-1].last = at
            else:
                seen.append(EndSeen(end, at, at))
            old = sum(1 for s in seen[:-1] if s.last < at - self.horizon)
            del seen[: max(old, len(seen) - self.samples)]

    def seconds_behind(self, tp: TopicPartition, position: int, now: float) -> float:
        """Age of the message at `position` (the next one a reader reads), 0 if the log
        has none there yet; written between the last time the end was seen at or before
        it and the first time past it, assuming an even rate in between."""
        seen = self._seen.get(tp)
        if not seen or position >= seen[-1].end:
            return 0.0
        after = bisect_right([s.end for s in seen], position)
        if after == 0:  # older than everything kept: at least that old
            return max(0.0, now - seen[0].first)
        before, past = seen[after - 1], seen[after]
        share = (position + 1 - before.end) / (past.end - before.end)
        return max(0.0, now - (before.last + share * (past.first - before.last)))


def reader_lags(
    positions: Mapping[str, Mapping[TopicPartition, int | None]],
    ends: Mapping[TopicPartition, int],
    starts: Mapping[TopicPartition, int],
    history: EndHistory,
    now: float,
) -> dict[str, ReaderLag]:
    """Each reader's lag from its committed offsets (`positions`: reader -> its
    partitions' commits, None where it never committed: it starts at the log start)."""
    lags = {}
    for name, committed in positions.items():
        messages, seconds = 0, 0.0
        for tp, offset in committed.items():
            start = starts.get(tp, 0)
            position = start if offset is None else max(offset, start)
            messages += partition_lag(offset, ends.get(tp, 0), start)
            seconds = max(seconds, history.seconds_behind(tp, position, now))
        lags[name] = ReaderLag(messages, seconds)
    return lags


# --- measuring ---------------------------------------------------------------------


class KafkaLagReader:
    """Reads a group's committed offsets and the end offsets with two long-lived clients."""

    def __init__(self, group: str, options: Mapping[str, Any]) -> None:
        self.group = group
        self.options = dict(options)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self.ends = EndHistory()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self.options)
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self.options)
            await consumer.start()
            self._consumer = consumer
        return self._admin, self._consumer

    async def close(self) -> None:
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def partitions(self, topics: Mapping[str, int | None]) -> list[TopicPartition]:
        """Every partition of `topics` (name -> count, None: ask the cluster)."""
        admin, _ = await self._clients()
        unknown = [name for name, count in topics.items() if not count]
        counts = {name: count for name, count in topics.items() if count}
        if unknown:
            for described in await admin.describe_topics(unknown):
                if not described.get("error_code") and described.get("partitions"):
                    counts[described["topic"]] = len(described["partitions"])
        return [TopicPartition(name, p) for name, count in counts.items() for p in range(count)]

    async def read(
        self, topics: Mapping[str, int | None], readers: Mapping[str, Iterable[str]]
    ) -> LagReport:
        """`readers`: progress group -> the topics it reads. Per partition, the slowest
        reader's commit (one that never committed counts as at the log's start)."""
        admin, consumer = await self._clients()
        partitions = await self.partitions(topics)
        groups = list(readers)
        listed = await asyncio.gather(*(admin.list_consumer_group_offsets(g) for g in groups))
        committed: dict[TopicPartition, int | None] = {}
        slowest: dict[TopicPartition, str] = {}
        positions: dict[str, dict[TopicPartition, int | None]] = {}
        for group, offsets in zip(groups, listed, strict=True):
            name = group.removeprefix(f"{self.group}-")
            mine = positions.setdefault(name, {})
            for tp in partitions:
                if tp.topic not in readers[group]:
                    continue
                meta = offsets.get(tp)
                mine[tp] = offset = None if meta is None or meta.offset < 0 else meta.offset
                if tp not in slowest or _behind(offset, committed[tp]):
                    committed[tp], slowest[tp] = offset, name
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        now = time.time()
        self.ends.add(ends, now)
        fresh = [tp for tp in partitions if _uncommitted(committed.get(tp))]
        starts: dict[TopicPartition, int] = {}
        if fresh:
            starts = await consumer.beginning_offsets(fresh)
        report = compute(self.group, partitions, committed, ends, starts, now, slowest)
        return replace(report, readers=reader_lags(positions, ends, starts, self.ends, now))


def _behind(offset: int | None, than: int | None) -> bool:
    """Whether a reader at `offset` is behind one at `than` (None: never committed)."""
    if than is None:
        return False
    return offset is None or offset < than


def _uncommitted(offset: int | None) -> bool:
    return offset is None or offset < 0


@dataclass
class Health:
    """The lag part of the health answer."""

    degraded: bool
    threshold: int
    total: int | None
    measured_at: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "total": self.total,
            "threshold": self.threshold,
            "degraded": self.degraded,
            "measured_at": self.measured_at,
        }
        if self.error is not None:
            body["error"] = self.error
        return body


class LagMonitor:
    """Cached lag measurements, the threshold's state, and the gauges."""

    def __init__(
        self,
        measure: Callable[[], Awaitable[LagReport]],
        threshold: int,
        max_age: float = LAG_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._measure = measure
        self.threshold = threshold
        self.max_age = max_age
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last: LagReport | None = None
        self._last_error: str | None = None
        self._taken = float("-inf")
        self.alerting = False
        """Whether the last crossing logged was into the degraded state."""

    async def report(self) -> LagReport:
        """A measurement at most `max_age` old; concurrent callers share one."""
        async with self._lock:
            if self._clock() - self._taken >= self.max_age:
                try:
                    self._last = await asyncio.wait_for(self._measure(), KAFKA_TIMEOUT)
                    self._last_error = None
                except Exception as error:
                    self._last, self._last_error = None, f"lag unavailable: {error!r}"
                self._taken = self._clock()
                self._publish()
            if self._last is None:
                raise LagUnavailable(self._last_error or "lag unavailable")
            return self._last

    async def health(self) -> Health:
        try:
            report = await self.report()
        except LagUnavailable as error:
            return Health(True, self.threshold, None, error=str(error))
        return Health(
            is_degraded(report.total, self.threshold),
            self.threshold,
            report.total,
            report.measured_at,
        )

    async def summary(self, prefix: str = "") -> dict[str, Any]:
        """`LagReport.summary` of the cached report, or `{"error": reason}` when the
        lag cannot be measured (the dashboard shows the reason)."""
        try:
            report = await self.report()
        except LagUnavailable as error:
            return {"error": str(error)[:200]}
        return report.summary(prefix)

    async def check(self) -> str | None:
        """Measure and log a crossing of the threshold (once per crossing)."""
        health = await self.health()
        change = crossing(self.alerting, health.total, self.threshold)
        if change == "degraded":
            self.alerting = True
            if health.error is not None:
                log.warning("consumer lag cannot be measured: %s", health.error)
            else:
                log.warning(
                    "consumer lag %d is above LAG_DEGRADED_THRESHOLD %d: health is degraded",
                    health.total,
                    self.threshold,
                )
        elif change == "recovered":
            self.alerting = False
            log.info(
                "consumer lag %d is back under LAG_DEGRADED_THRESHOLD %d",
                health.total,
                self.threshold,
            )
        return change

    def _publish(self) -> None:
        metrics.CONSUMER_LAG.clear()
        metrics.READER_LAG_MESSAGES.clear()
        metrics.READER_LAG_SECONDS.clear()
        if self._last is None:
            metrics.LAG_DEGRADED.set(1)
            return
        for p in self._last.partitions:
            metrics.CONSUMER_LAG.labels(topic=p.topic, partition=str(p.partition)).set(p.lag)
        for name, lag in self._last.readers.items():
            metrics.READER_LAG_MESSAGES.labels(reader=name).set(lag.messages)
            metrics.READER_LAG_SECONDS.labels(reader=name).set(lag.seconds)
        metrics.LAG_DEGRADED.set(int(is_degraded(self._last.total, self.threshold)))


class LagUnavailable(Exception):
    """The offsets could not be read (the broker is unreachable, or slow)."""


# --- the app's lag -------------------------------------------------------------------


def input_topics() -> dict[str, int | None]:
    """Every topic a reader of this app reads -> its partition count (None if not declared)."""
    names = {name for topics in READERS.values() for name in topics}
    return {name: CATALOG[name][0] if name in CATALOG else None for name in sorted(names)}


reader = KafkaLagReader(settings.app_id, client_options())


async def _measure_app() -> LagReport:
    return await reader.read(input_topics(), READERS)


lag_monitor = LagMonitor(_measure_app, settings.lag_degraded_threshold)


class LagReaderService(faust.Service):
    """Closes the lag reader's clients when the worker stops."""

    async def on_stop(self) -> None:
        await reader.close()


app.service(LagReaderService())  # type: ignore[arg-type]


@app.timer(LAG_CHECK_INTERVAL)
async def check_lag() -> None:
    """Alert (log) when the readers' lag crosses the threshold."""
    await lag_monitor.check()
