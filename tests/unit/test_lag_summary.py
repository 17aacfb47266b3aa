"""The dashboard's lag: a view of the one lag reader's report, from the same cache (no broker)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app import lag
from app.lag import LagMonitor, LagReport, PartitionLag
from web import analytics

REPORT = LagReport(
    "shop",
    [
        PartitionLag("p.orders.events", 0, 5, 9, 4),
        PartitionLag("p.orders.events", 1, None, 3, 3),
        PartitionLag("p.payments.events", 0, 2, 2, 0),
    ],
    measured_at=1.0,
)


def test_the_summary_has_the_reports_numbers_with_short_topic_names() -> None:
    body = REPORT.as_dict()
    summary = REPORT.summary("p.")
    assert summary == {"total": 7, "by_topic": {"orders.events": 7, "payments.events": 0}}
    assert summary["total"] == body["total"]
    assert {"p." + name: n for name, n in summary["by_topic"].items()} == body["topics"]
    assert sum(summary["by_topic"].values()) == summary["total"]


def test_without_a_prefix_the_names_are_the_topics() -> None:
    assert REPORT.summary()["by_topic"] == REPORT.by_topic()
    assert REPORT.summary("other.")["by_topic"] == REPORT.by_topic()


class Measure:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    async def __call__(self) -> LagReport:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("broker unreachable")
        return REPORT


async def test_summary_and_report_share_one_measurement() -> None:
    measure = Measure()
    monitor = LagMonitor(measure, threshold=10, max_age=60.0)
    summary = await monitor.summary("p.")
    report = await monitor.report()
    assert measure.calls == 1
    assert summary == report.summary("p.") and summary["total"] == report.total


async def test_summary_says_why_when_the_lag_cannot_be_measured() -> None:
    monitor = LagMonitor(Measure(fail=True), threshold=10)
    summary = await monitor.summary()
    assert set(summary) == {"error"}
    assert "broker unreachable" in summary["error"] and len(summary["error"]) <= 200


async def test_the_dashboard_shows_the_app_lag_monitors_summary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """local_snapshot reads the lag from app.lag's monitor: no reader of its own."""
    asked: list[str] = []

    async def summary(prefix: str = "") -> dict[str, Any]:
        asked.append(prefix)
        return REPORT.summary(prefix)

    monkeypatch.setattr(lag.lag_monitor, "summary", summary)
    monkeypatch.setattr(
        analytics, "settings", analytics.settings.model_copy(update={"topic_prefix": "p."})
    )
    monkeypatch.setattr(analytics, "figures", lambda: None)
    monkeypatch.setattr(analytics.t, "summary", lambda *args: {})
    monkeypatch.setattr(analytics.t, "top", lambda *args: {})
    monkeypatch.setattr(
        analytics.t,
        "meta",
        lambda store: dict.fromkeys(
            ("processed", "duplicates", "late", "late_events", "watermark"), 0
        ),
    )
    snapshot = await analytics.local_snapshot()
    assert asked == ["p."]
    assert snapshot["health"]["lag"] == {
        "total": 7,
        "by_topic": {"orders.events": 7, "payments.events": 0},
    }
    assert not hasattr(analytics, "LagProbe") and not hasattr(analytics, "lag_probe")
