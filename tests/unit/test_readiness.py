"""The one readiness rule, and the three read paths that ask it (no broker)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

import app.worker as shop
from app.readiness import RECOVERING, serves_reads
from web import analytics, ops
from web.http import HttpError, owner_route


def worker(started: bool = True, in_recovery: bool = False, recovered: bool = True) -> Any:
    completed = asyncio.Event()
    if recovered:
        completed.set()
    return SimpleNamespace(
        producer=SimpleNamespace(started=started),
        in_recovery=in_recovery,
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=completed)),
    )


def test_a_started_recovered_worker_serves_reads() -> None:
    assert serves_reads(worker()) is True


@pytest.mark.parametrize(
    "state",
    [
        {"started": False},  # no producer yet (start-up), or no more (shutdown)
        {"in_recovery": True},  # a rebalance's recovery is under way
        {"recovered": False},  # the first recovery has not completed yet
        {"started": False, "in_recovery": True, "recovered": False},
    ],
)
def test_any_missing_condition_means_no_reads(state: dict[str, bool]) -> None:
    assert serves_reads(worker(**state)) is False


@pytest.fixture
def recovering(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real app, in recovery (it is not started either: a unit test)."""
    monkeypatch.setattr(shop.app, "in_recovery", True)


async def test_owner_route_refuses_while_the_rule_says_no(recovering: None) -> None:
    async def handler(view: Any, request: Any) -> Any:
        raise AssertionError("served while recovering")

    routed = owner_route(analytics.routed, exact=analytics.HOME)(handler)
    with pytest.raises(HttpError) as refused:
        await routed(None, None)
    assert (refused.value.status, refused.value.code) == (503, "not_ready")
    assert refused.value.reason == RECOVERING
    assert refused.value.headers["Retry-After"] == "1"


async def test_the_live_snapshot_is_unavailable_while_the_rule_says_no(recovering: None) -> None:
    with pytest.raises(analytics.Unavailable, match=RECOVERING):
        await analytics.snapshot_anywhere()


async def test_ops_readiness_is_the_rule_and_its_own_facts(recovering: None) -> None:
    body = ops.readiness()
    assert body["recovering"] is True and body["status"] == "starting"
    assert set(body) == {
        "status",
        "recovering",
        "catching_up",
        "active_partitions",
        "partitions",
        "web",
    }
