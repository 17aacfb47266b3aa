"""A worker that comes back under its name gets its partitions back; the others never stop.

Static membership: SHOP_INSTANCE_ID is the worker's group instance id. Two workers;
w2 is SIGKILLed and started again at once (same name, same data dir), well within
the session timeout. The group does not rebalance: w1 owns the same partitions
throughout and is given no new assignment (`shop_rebalances_total`), w2 owns what it
owned before, and a deposit to an account in each of w2's partitions, sent to w1
while w2 is down, is answered once w2 is back. About 25 s: two workers start, and
one starts again.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from typing import Any, cast

import httpx
import pytest

from agents.engine import key_in_partition
from tests.integration.test_startup import eventually, post
from tests.system import ROOT, System, Worker

pytestmark = pytest.mark.integration

PARTITIONS = 8


def owned(worker: Worker) -> list[int] | None:
    """The partitions a ready worker owns (None while it is not ready)."""
    try:
        response = httpx.get(f"{worker.url}/health", timeout=5.0)
    except httpx.HTTPError:
        return None
    return list(response.json()["partitions"]) if response.status_code == 200 else None


def split(w1: Worker, w2: Worker) -> tuple[list[int], list[int]]:
    """The partitions each of two ready workers owns, once they own them all between them."""

    def settled() -> tuple[list[int], list[int]] | None:
        a, b = owned(w1), owned(w2)
        if a and b and sorted(a + b) == list(range(PARTITIONS)):
            return a, b
        return None

    return cast(tuple[list[int], list[int]], eventually(settled, timeout=120))


def rebalances(worker: Worker) -> float:
    text = httpx.get(f"{worker.url}/metrics", timeout=5.0).text
    found = re.search(r"^shop_rebalances_total (\S+)$", text, re.MULTILINE)
    assert found, "shop_rebalances_total is not exported"
    return float(found.group(1))


def test_a_worker_restarted_under_its_name_moves_no_partition(
    kafka_bootstrap: str, tmp_path_factory: Any
) -> None:
    system = System(tmp_path_factory.mktemp("static"))
    try:
        w1 = system.worker().wait_ready(timeout=240)
        w2 = system.worker().wait_ready(timeout=240)
        before_1, before_2 = split(w1, w2)
        api = httpx.Client(base_url=w1.url, timeout=60.0)
        accounts = {p: key_in_partition(p) for p in before_2}  # each in a partition of w2
        for partition, account in accounts.items():
            post(api, "/accounts", {"account_id": account, "owner": f"p{partition}"})
        assigned_1 = rebalances(w1)

        w2.kill(signal.SIGKILL)
        answers: dict[str, Any] = {}

        def deposit(account: str) -> None:  # sent while w2 is down: w1 routes it on
            answers[account] = post(api, f"/accounts/{account}/deposits", {"amount": "5.00"})

        sent = [threading.Thread(target=deposit, args=(a,)) for a in accounts.values()]
        for thread in sent:
            thread.start()
        w2.start().wait_ready(timeout=240)
        for thread in sent:
            thread.join(timeout=120)

        assert owned(w1) == before_1
        assert owned(w2) == before_2
        assert rebalances(w1) == assigned_1, "the group rebalanced: w1 was given a new assignment"
        assert all(answers[a]["version"] == 2 for a in accounts.values()), answers
    finally:
        system.stop()


def shop_leave(system: System, *names: str) -> subprocess.CompletedProcess[str]:
    """`shop leave NAME...` as an operator runs it, with the system's settings."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "leave", *names],
        cwd=ROOT,
        env={**os.environ, **system.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_worker_that_left_by_name_hands_its_partitions_over_at_once(
    kafka_bootstrap: str, tmp_path_factory: Any
) -> None:
    """A scale-down: w2 stops and leaves (`shop leave w2`). The group's session timeout is
    30 s here, so w1 taking every partition within 20 s is the leave's doing (without it,
    w1 waits the whole 30 s: the same test with the leave left out fails). About 40 s:
    two workers start, and w1 learns of the rebalance at its next heartbeat (10 s)."""
    system = System(tmp_path_factory.mktemp("leave"), KAFKA_SESSION_TIMEOUT="30")
    try:
        w1 = system.worker().wait_ready(timeout=240)
        w2 = system.worker().wait_ready(timeout=240)
        split(w1, w2)
        w2.stop()
        left = shop_leave(system, "w2")
        assert (left.returncode, left.stdout) == (0, f"w2: left {system.id}\n"), left.stderr
        eventually(lambda: owned(w1) == list(range(PARTITIONS)), timeout=20)
        again = shop_leave(system, "w2", "w9")
        assert again.returncode == 1
        assert again.stdout.splitlines() == [
            "w2: not a member (it left, its session timed out, or it never started)",
            "w9: not a member (it left, its session timed out, or it never started)",
        ]
    finally:
        system.stop()
