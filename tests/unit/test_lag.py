"""Lag arithmetic, the threshold's crossings, and the measurement cache (no broker)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from app.lag import (
    EndHistory,
    KafkaLagReader,
    LagMonitor,
    LagReport,
    LagUnavailable,
    PartitionLag,
    compute,
    crossing,
    is_degraded,
    partition_lag,
    reader_lags,
)

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


def test_partition_lag_is_end_minus_committed() -> None:
    assert partition_lag(committed=7, end=10) == 3
    assert partition_lag(committed=10, end=10) == 0


def test_never_committed_counts_from_the_log_start() -> None:
    assert partition_lag(committed=None, end=10) == 10
    assert partition_lag(committed=-1, end=10, start=4) == 6
    assert partition_lag(committed=None, end=0) == 0


def test_committed_below_the_log_start_restarts_there() -> None:
    # retention removed 0..99: the group resets to 100, not to its old position
    assert partition_lag(committed=20, end=150, start=100) == 50


def test_lag_is_never_negative() -> None:
    assert partition_lag(committed=12, end=10) == 0


def test_report_per_partition_per_topic_and_total() -> None:
    report = compute(
        "g",
        [B0, A1, A0],
        committed={A0: 5, A1: -1, B0: 3},
        ends={A0: 9, A1: 4, B0: 3},
        starts={A1: 1},
        measured_at=123.0,
    )
    assert report.partitions == [
        PartitionLag("a", 0, 5, 9, 4),
        PartitionLag("a", 1, None, 4, 3),
        PartitionLag("b", 0, 3, 3, 0),
    ]
    assert report.total == 7
    assert report.by_topic() == {"a": 7, "b": 0}
    body = report.as_dict()
    assert body["group"] == "g" and body["total"] == 7 and body["measured_at"] == 123.0
    assert body["partitions"][1] == {
        "topic": "a", "partition": 1, "committed": None, "end": 4, "lag": 3, "reader": None,
    }  # fmt: skip


def test_a_partition_without_any_offset_has_no_lag() -> None:
    report = compute("g", [A0], committed={}, ends={})
    assert report.partitions == [PartitionLag("a", 0, None, 0, 0)]


def test_degraded_above_the_threshold_or_when_unknown() -> None:
    assert not is_degraded(1000, 1000)
    assert is_degraded(1001, 1000)
    assert is_degraded(None, 1000)


def test_crossings_are_reported_once_each_way() -> None:
    totals = [0, 10, 60, 80, 55, 40, 30, 70]
    state, changes = False, []
    for total in totals:
        change = crossing(state, total, threshold=50)
        if change is not None:
            state = change == "degraded"
        changes.append(change)
    assert changes == [None, None, "degraded", None, None, "recovered", None, "degraded"]


class Measurements:
    def __init__(self, totals: list[int | None]) -> None:
        self.totals = totals
        self.calls = 0

    async def __call__(self) -> LagReport:
        total = self.totals[min(self.calls, len(self.totals) - 1)]
        self.calls += 1
        await asyncio.sleep(0.01)
        if total is None:
            raise ConnectionError("broker unreachable")
        return LagReport("g", [PartitionLag("t", 0, 0, total, total)])


async def test_measurements_are_cached_and_shared() -> None:
    now = [0.0]
    measure = Measurements([5, 6])
    monitor = LagMonitor(measure, threshold=10, max_age=2.0, clock=lambda: now[0])
    reports = await asyncio.gather(*(monitor.report() for _ in range(5)))
    assert measure.calls == 1 and {r.total for r in reports} == {5}
    now[0] = 1.9
    assert (await monitor.report()).total == 5 and measure.calls == 1
    now[0] = 2.0
    assert (await monitor.report()).total == 6 and measure.calls == 2


async def test_check_logs_each_crossing_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    measure = Measurements([0, 100, 120, 3, 2, None])
    monitor = LagMonitor(measure, threshold=50, max_age=1.0, clock=lambda: now[0])
    changes = []
    for step in range(6):
        now[0] = float(step)
        with caplog.at_level("INFO", logger="app.lag"):
            changes.append(await monitor.check())
    assert changes == [None, "degraded", None, "recovered", None, "degraded"]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    infos = [r for r in caplog.records if r.levelname == "INFO"]
    assert len(warnings) == 2 and len(infos) == 1
    assert "above LAG_DEGRADED_THRESHOLD 50" in warnings[0].getMessage()
    assert "cannot be measured" in warnings[1].getMessage()


async def test_health_when_lag_cannot_be_measured() -> None:
    monitor = LagMonitor(Measurements([None]), threshold=50)
    health = await monitor.health()
    assert health.degraded and health.total is None
    assert "broker unreachable" in (health.error or "")
    with pytest.raises(LagUnavailable):
        await monitor.report()


class Offsets:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class Admin:
    """Two readers' progress groups: `fold` at 8 on t[0], `service` at 5 on t[0] and 2 on u[0];
    a third that never committed on u[0]."""

    async def list_consumer_group_offsets(self, group: str) -> dict[Any, Offsets]:
        return {
            "app-fold": {TopicPartition("t", 0): Offsets(8)},
            "app-service": {TopicPartition("t", 0): Offsets(5), TopicPartition("u", 0): Offsets(2)},
            "app-idle": {},
        }[group]


class Ends:
    async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: 10 for tp in tps}

    async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: 0 for tp in tps}


async def test_each_partition_reports_its_slowest_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = KafkaLagReader("app", {})

    async def clients() -> tuple[Any, Any]:
        return Admin(), Ends()

    monkeypatch.setattr(reader, "_clients", clients)
    readers = {"app-fold": ("t",), "app-service": ("t", "u"), "app-idle": ("u",)}
    report = await reader.read({"t": 1, "u": 1}, readers)
    rows = {(p.topic, p.reader): (p.committed, p.lag) for p in report.partitions}
    # t: the service (5) is behind the fold (8); u: the idle reader never committed
    assert rows == {("t", "service"): (5, 5), ("u", "idle"): (None, 10)}
    # each reader's own lag, in messages over its partitions
    assert {name: lag.messages for name, lag in report.readers.items()} == {
        "fold": 2,
        "service": 5 + 8,
        "idle": 10,
    }
    assert report.as_dict()["reader_lag"]["service"]["messages"] == 13


def test_seconds_behind_is_when_the_log_end_passed_the_position() -> None:
    history = EndHistory()
    history.add({A0: 100}, at=1000.0)
    history.add({A0: 100}, at=1010.0)  # idle: the end last seen at 100 at 1010
    history.add({A0: 110}, at=1020.0)  # 10 written between 1010 and 1020
    history.add({A0: 110}, at=1030.0)
    assert history.seconds_behind(A0, 110, now=1030.0) == 0.0  # caught up
    assert history.seconds_behind(A0, 500, now=1030.0) == 0.0  # past the end: nothing to read
    # offset 100 was the first written after 1010: about 1011, so 19 s old at 1030
    assert history.seconds_behind(A0, 100, now=1030.0) == pytest.approx(19.0)
    # offset 109, the last: about 1020
    assert history.seconds_behind(A0, 109, now=1030.0) == pytest.approx(10.0)
    # the age grows with the clock while the reader stands still (a stalled reader)
    assert history.seconds_behind(A0, 100, now=1090.0) == pytest.approx(79.0)


def test_a_reader_older_than_the_history_shows_at_least_its_length() -> None:
    history = EndHistory(horizon=60.0)
    for step in range(10):
        history.add({A0: 100 + step * 10}, at=1000.0 + step * 10)
    # kept: the ends seen within the last 60 s, so at least 60 s behind
    assert history.seconds_behind(A0, 0, now=1090.0) == pytest.approx(60.0)
    history = EndHistory(samples=3)
    for step in range(10):
        history.add({A0: step}, at=float(step))
    assert history.seconds_behind(A0, 0, now=9.0) == pytest.approx(9.0 - 7.0)


def test_a_recreated_topic_starts_its_history_again() -> None:
    history = EndHistory()
    history.add({A0: 100}, at=0.0)
    history.add({A0: 5}, at=10.0)
    assert history.seconds_behind(A0, 0, now=20.0) == pytest.approx(10.0)


def test_reader_lags_sum_messages_and_take_the_oldest_partition() -> None:
    history = EndHistory()
    history.add({A0: 10, A1: 20}, at=0.0)
    history.add({A0: 10, A1: 30}, at=10.0)
    lags = reader_lags(
        {"fold": {A0: 10, A1: 20}, "fresh": {A0: None}},
        ends={A0: 10, A1: 30},
        starts={A0: 4},
        history=history,
        now=10.0,
    )
    assert lags["fold"].messages == 10 and lags["fold"].seconds == pytest.approx(9.0)
    # never committed: from the log start (4), written before the history began
    assert lags["fresh"].messages == 6 and lags["fresh"].seconds == pytest.approx(10.0)
