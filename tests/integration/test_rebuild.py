"""Rebuilding a read model: a corrupted and half-dropped `accounts` read model is
rebuilt from the event log by `shop rebuild`, while the worker keeps serving and
new deposits keep arriving, and ends equal to the fold of the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import murmur2

from domain.accounts import ACCOUNTS
from models.accounts import AccountView
from models.envelope import EventEnvelope
from tables.partition_store import PartitionStore
from tables.state_fold import state_key
from tests.integration.analytics_support import eventually, read_events
from tests.system import ROOT, System, Worker

pytestmark = pytest.mark.integration

ACCOUNT_IDS = [f"rb-{n}" for n in range(12)]


@pytest.fixture(scope="module")
def node(system: System) -> Worker:
    return system.worker().wait_ready(timeout=240)


def deposit(api: httpx.Client, account_id: str, amount: str) -> None:
    response = api.post(f"/accounts/{account_id}/deposits", json={"amount": amount})
    assert response.status_code == 201, response.text


def fold_of_the_log(system: System) -> dict[str, dict[str, Any]]:
    """Each account as the pure decider folds it from accounts.events."""
    streams: dict[str, list[EventEnvelope]] = defaultdict(list)
    for raw in read_events(system, "accounts.events"):
        envelope = EventEnvelope.model_validate(raw)
        streams[envelope.aggregate_id].append(envelope)
    return {
        account_id: AccountView(
            **ACCOUNTS.replay(
                account_id, sorted(events, key=lambda e: e.aggregate_version)
            ).model_dump()
        ).model_dump(mode="json")
        for account_id, events in streams.items()
    }


def corrupt_store(node: Worker, rows: dict[str, Any]) -> None:
    """Write account rows straight into the stopped worker's fold stores (None: delete)."""
    for account_id, row in rows.items():
        partition = (murmur2(account_id.encode()) & 0x7FFFFFFF) % int(
            node.system.env["SHOP_PARTITIONS"]
        )
        path = node.datadir / "folds" / "accounts-projection" / f"p{partition}"
        assert path.exists(), path
        store = PartitionStore(path)
        try:
            value = None if row is None else json.dumps(row).encode()
            store.write({state_key(account_id): value}, store.offsets)
        finally:
            store.close()


def shop_rebuild(system: System, model: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "rebuild", model, "--timeout", "180"],
        cwd=ROOT,
        env={**os.environ, **system.env},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_a_corrupted_read_model_is_rebuilt_from_the_log(system: System, node: Worker) -> None:
    api = httpx.Client(base_url=node.url, timeout=30.0)
    for n, account_id in enumerate(ACCOUNT_IDS):
        assert (
            api.post("/accounts", json={"account_id": account_id, "owner": "rb"}).status_code == 201
        )
        for _ in range(n % 4 + 1):
            deposit(api, account_id, "10.00")
    truth = fold_of_the_log(system)
    assert set(truth) == set(ACCOUNT_IDS)
    events_before = sum(row["version"] for row in truth.values())

    # corrupt the read model where it is stored (its partition stores on disk):
    # a wrong balance, a row that is not an account, a dropped row, a phantom
    wrong = {**truth["rb-1"], "balance": "999999.00"}
    node.stop()
    ghost = {**truth["rb-4"], "account_id": "rb-ghost"}
    corrupt_store(node, {"rb-1": wrong, "rb-2": {"garbage": True}, "rb-3": None, "rb-ghost": ghost})
    node.start().wait_ready(timeout=240)
    assert api.get("/accounts/rb-1").json()["balance"] == "999999.00"
    assert api.get("/accounts/rb-3").status_code == 404
    assert api.get("/accounts/rb-ghost").status_code == 200

    # deposits keep arriving during the rebuild; the live model keeps answering
    stop = threading.Event()
    served: list[int] = []

    def keep_going() -> None:
        while not stop.is_set():
            deposit(api, "rb-0", "1.00")
            served.append(api.get("/accounts/rb-5").status_code)

    traffic = threading.Thread(target=keep_going)
    traffic.start()
    try:
        result = shop_rebuild(system, "accounts")
    finally:
        stop.set()
        traffic.join(timeout=60)
    print(result.stderr[-600:], result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 partitions switched" in result.stdout
    assert "partitions switched" in result.stderr  # the progress bar
    assert served and set(served) == {200}

    truth = fold_of_the_log(system)
    replayed = int(result.stdout.split(" events replayed")[0].split()[-1])
    assert replayed >= events_before

    def equal_to_the_log() -> Any:
        shown = {a: api.get(f"/accounts/{a}").json() for a in truth}
        return shown == truth or shown

    eventually(lambda: equal_to_the_log() is True, 30, 0.5)
    assert api.get("/accounts/rb-ghost").status_code == 404
    assert Decimal(api.get("/accounts/rb-0").json()["balance"]) == Decimal(truth["rb-0"]["balance"])
    # the live projection goes on from the rebuilt rows
    deposit(api, "rb-3", "5.00")
    assert eventually(
        lambda: api.get("/accounts/rb-3").json()["version"] == truth["rb-3"]["version"] + 1, 30, 0.2
    )


def test_an_unknown_read_model_is_refused(system: System, node: Worker) -> None:
    result = shop_rebuild(system, "nope")
    assert result.returncode == 2
    assert "invalid choice: 'nope'" in result.stderr


def test_orders_by_id_are_rebuilt_unchanged_when_nothing_is_wrong(
    system: System, node: Worker
) -> None:
    api = httpx.Client(base_url=node.url, timeout=30.0)
    assert api.post("/accounts", json={"account_id": "rb-buyer", "owner": "b"}).status_code == 201
    deposit(api, "rb-buyer", "50.00")
    assert api.post("/products/RB-SKU/stock", json={"quantity": 5}).status_code == 201
    body = {
        "order_id": "rb-order",
        "customer_id": "rb-buyer",
        "lines": [{"sku": "RB-SKU", "quantity": 2, "unit_price": "4.00"}],
    }
    assert api.post("/orders", json=body).status_code == 202
    eventually(lambda: api.get("/orders/rb-order").json().get("status") == "shipped", 60, 0.3)
    before = api.get("/orders/rb-order").json()
    listed = api.get("/customers/rb-buyer/orders").json()
    result = shop_rebuild(system, "orders")
    assert result.returncode == 0, result.stdout + result.stderr
    # the order's state and its two index rows (by customer, by status)
    assert " 0 rows written, 0 deleted, 3 unchanged" in result.stdout
    assert api.get("/orders/rb-order").json() == before
    assert api.get("/customers/rb-buyer/orders").json() == listed


@pytest.mark.parametrize("model", ["stock", "timeline", "analytics"])
def test_stock_timeline_and_analytics_are_rebuilt_unchanged_when_nothing_is_wrong(
    system: System, node: Worker, model: str
) -> None:
    api = httpx.Client(base_url=node.url, timeout=30.0)
    closed = int(time.time() * 1000) - 120_000  # windows that no longer change with the clock
    views = ("/products/RB-SKU", "/orders/rb-order/timeline", f"/analytics/summary?until={closed}")
    before = [api.get(view).json() for view in views]
    result = shop_rebuild(system, model)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 rows written, 0 deleted, " in result.stdout
    unchanged = int(result.stdout.split(" unchanged")[0].split()[-1])
    assert unchanged >= 1
    assert [api.get(view).json() for view in views] == before
