"""Start-up and outages: every topic exists before consuming; system errors hold, never divert.

Workers started at the same moment on fresh topics must all come up fully
wired (no changelog left unassigned, no service dead-lettering every message),
and a producer outage while orders flow must end with every order final and
nothing in the dead-letter topic: a system error is waited out, not buried.

A default run races three workers once; `STARTUP_RUNS=20 make startup-loop`
races two and three workers, 20 times each.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.system import System, Worker

pytestmark = pytest.mark.integration

FINAL = ("shipped", "completed", "cancelled")
RUNS = int(os.environ.get("STARTUP_RUNS", "1"))
WIRING_ERRORS = ("PartitionsMismatch", "Ignoring missing topic", "not found in cluster metadata")


def eventually(check: Any, timeout: float = 90.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while (value := check()) is None or value is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s")
        time.sleep(every)
    return value


def post(api: httpx.Client, path: str, body: dict[str, Any], key: str | None = None) -> Any:
    """POST until answered (a 503/504 is retried with the same Idempotency-Key)."""
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    while True:
        try:
            response = api.post(path, json=body, headers=headers)
        except httpx.TimeoutException:
            continue
        if response.status_code not in (502, 503, 504):
            assert response.status_code < 300, f"{path}: {response.status_code} {response.text}"
            return response.json()
        time.sleep(0.5)


def final_status(api: httpx.Client, order_id: str, timeout: float = 120.0) -> str:
    def check() -> str | None:
        response = api.get(f"/orders/{order_id}")
        if response.status_code == 200 and response.json()["status"] in FINAL:
            return str(response.json()["status"])
        return None

    return str(eventually(check, timeout))


def shop_with_goods(api: httpx.Client, money: str = "1000.00", units: int = 100) -> None:
    post(api, "/accounts", {"account_id": "buyer", "owner": "Buyer"})
    post(api, "/accounts/buyer/deposits", {"amount": money})
    post(api, "/products/MUG/stock", {"quantity": units})


def order(api: httpx.Client, order_id: str) -> None:
    line = {"sku": "MUG", "quantity": 1, "unit_price": "10.00"}
    post(api, "/orders", {"order_id": order_id, "customer_id": "buyer", "lines": [line]})


def start_at_once(system: System, count: int) -> list[Worker]:
    workers = [system.worker() for _ in range(count)]  # Popen returns at once: a race
    return [worker.wait_ready(timeout=120) for worker in workers]


def wiring_errors(workers: list[Worker]) -> list[str]:
    return [
        f"{worker.name}: {line.strip()[:200]}"
        for worker in workers
        for line in worker.log_path.read_text(errors="replace").splitlines()
        if any(error in line for error in WIRING_ERRORS)
    ]


@pytest.mark.parametrize("count", [2, 3] if RUNS > 1 else [3])
@pytest.mark.parametrize("run", range(RUNS))
def test_workers_started_at_once_on_fresh_topics_are_fully_wired(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, count: int, run: int
) -> None:
    system = System(tmp_path_factory.mktemp(f"start{count}"))
    try:
        workers = start_at_once(system, count)
        apis = [httpx.Client(base_url=w.url, timeout=30.0) for w in workers]
        shop_with_goods(apis[0])
        orders = [f"o-{i}" for i in range(6)]
        for i, order_id in enumerate(orders):
            order(apis[i % count], order_id)
        assert [final_status(apis[-1], o) for o in orders] == ["shipped"] * len(orders)
        assert system.read_topic("deadletters", partitions=1) == []
        assert wiring_errors(workers) == []
        # `shop worker` runs faust on uvloop: faust's banner names the loop
        banners = [w.log_path.read_text(errors="replace") for w in workers]
        assert all("+uvloop" in banner for banner in banners), "a worker not on uvloop"
    finally:
        system.stop()


def test_a_topic_with_the_wrong_partition_count_stops_the_worker_with_a_clear_error(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    system = System(tmp_path_factory.mktemp("mismatch"), SHOP_PARTITIONS="4")
    try:
        system.worker().wait_ready().stop()
        system.env["SHOP_PARTITIONS"] = "8"  # the same topics, now expected with 8
        worker = system.worker("w-more")
        assert worker.process is not None
        assert worker.process.wait(timeout=90) != 0
        log = worker.log_path.read_text(errors="replace")
        assert "refusing to start" in log
        assert "accounts.events: has 4 partitions, needs 8" in log
    finally:
        system.stop()


def test_a_producer_outage_while_orders_flow_holds_and_diverts_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # every batch fails to append for 30 s from the 25th on: mid-way through the orders
    system = System(tmp_path, SHOP_FAULT="decided:fail:30@25", COMMAND_TIMEOUT="3")
    try:
        worker = system.worker().wait_ready()
        api = httpx.Client(base_url=worker.url, timeout=30.0)
        shop_with_goods(api)
        health: list[str] = []
        stalled: set[str] = set()
        done = threading.Event()

        def watch() -> None:
            with httpx.Client(base_url=worker.url, timeout=10.0) as client:
                while not done.is_set():
                    body = client.get("/ops/health").json()
                    health.append(body["status"])
                    stalled.update(s["agent"] for s in body["stalled"])
                    time.sleep(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        orders = [f"o-{i}" for i in range(12)]
        for order_id in orders:
            order(api, order_id)
            time.sleep(1.0)
        statuses = [final_status(api, o) for o in orders]
        eventually(lambda: health[-1] == "ok", timeout=30)
        done.set()
        assert statuses == ["shipped"] * len(orders)
        assert "degraded" in health, health
        assert stalled, "no agent reported as stalled during the outage"
        assert system.read_topic("deadletters", partitions=1) == []
        buyer = api.get("/accounts/buyer").json()
        assert Decimal(buyer["balance"]) == Decimal("1000.00") - 10 * len(orders)
        eventually(lambda: api.get("/products/MUG").json()["on_hand"] == 100 - len(orders))
        metrics = api.get("/metrics").text.splitlines()
        assert any(line.startswith("shop_system_errors_total{") for line in metrics)
        assert not any(line.startswith("shop_dead_letters_total{") for line in metrics)
    finally:
        system.stop()
