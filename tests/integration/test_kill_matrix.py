"""The write path's kill matrix: SIGKILL a worker at each named point, check against the log.

Two workers run the saga; multi-line orders from several customers flow while
the victim dies at one fault point of the write path (agents/partition_writer.py):
a batch decided but not appended (`decided`), the first of a batch's record batches
handed to the producer (`append-mid-batch`, each command a record batch of its own
there), a batch handed over but not acknowledged
(`append-unacked`), acknowledged but neither folded nor answered (`appended`),
between the commands of a fan-out (`dispatch@2`), with a saga command decided on
this worker and its answer not yet taken here (`answer-here`); and at each point
of a saga service's batch on the engine (agents/service.py): its commands decided
and appended, nothing sent (`service-answered`), its sends handed over and not
acknowledged (`service-unacked`), acknowledged and its position not stored
(`service-sent`), its position stored (`service-stored`). It restarts on its own data
dir or on an empty one, once the survivor has taken its partitions over. Then,
read straight from Kafka: every aggregate's
versions are 1..n, no event is there twice, each read model and the command
side equal the fold of the log, money and stock are conserved, no order is
charged twice, every order is final.

The suite runs two cells (a minute each: the write path's and the engine's point where
a batch's outputs are out and its position is not stored); `make kill-matrix` runs all
twenty KILL_RUNS times.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import defaultdict
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.accounts import ACCOUNTS
from domain.inventory import STOCKS
from models.envelope import EventEnvelope
from tests.integration.test_failover import owned
from tests.integration.test_fold_crash import killed
from tests.integration.test_order_saga import customer, eventually, final_order, stock
from tests.system import System, Worker

pytestmark = pytest.mark.integration

POINTS = [
    "decided",
    "append-mid-batch",
    "append-unacked",
    "appended",
    "dispatch@2",
    "answer-here",
    "service-answered",
    "service-unacked",
    "service-sent",
    "service-stored",
]
RESTARTS = ["own-data", "empty-data"]
RUNS = int(os.environ.get("KILL_RUNS", "0"))
SUITE = [("appended", "empty-data"), ("service-sent", "empty-data")]
CELLS = [(p, r) for p in POINTS for r in RESTARTS] if RUNS else SUITE
BUYERS = [f"km-buyer-{n}" for n in range(6)]
SKUS = [f"KM-{n}" for n in range(4)]
MONEY = Decimal("1000.00")
UNITS = 500
ORDERS_N = 30
DEPOSITS = 5
"""Deposits of 1.00 per buyer, sent all at once during the orders."""
EVENT_TOPICS = [
    "accounts.events",
    "orders.events",
    "payments.events",
    "inventory.events",
    "reservations.events",
    "shipping.events",
]


def orders() -> list[dict[str, Any]]:
    return [
        {
            "order_id": f"km-{n}",
            "customer_id": BUYERS[n % len(BUYERS)],
            "lines": [
                {"sku": sku, "quantity": 1 + (n + i) % 3, "unit_price": "2.50"}
                for i, sku in enumerate(SKUS[n % 2 : n % 2 + 2 + n % 2])
            ],
        }
        for n in range(ORDERS_N)
    ]


async def place_all(workers: list[Worker], bodies: list[dict[str, Any]]) -> None:
    """Each order to both workers in turn, and a burst of deposits at once (batches of
    several commands); a failure (the victim died) is retried on the other worker with
    the same order id or Idempotency-Key, as a client would."""
    clients = [httpx.AsyncClient(base_url=w.url, timeout=30.0) for w in workers]
    gate = asyncio.Semaphore(8)

    async def until_done(n: int, path: str, body: dict[str, Any], key: str) -> None:
        attempt = n
        while True:
            try:
                client = clients[attempt % 2]
                response = await client.post(path, json=body, headers={"Idempotency-Key": key})
                if response.status_code in (201, 202, 409):
                    return
            except httpx.HTTPError:
                pass
            attempt += 1
            await asyncio.sleep(0.3)

    async def order(n: int, body: dict[str, Any]) -> None:
        async with gate:
            await until_done(n, "/orders", body, f"km-order-{body['order_id']}")

    deposits = [
        until_done(n, f"/accounts/{buyer}/deposits", {"amount": "1.00"}, f"km-dep-{buyer}-{i}")
        for n, (buyer, i) in enumerate((b, i) for i in range(DEPOSITS) for b in BUYERS)
    ]
    try:
        await asyncio.gather(*(order(n, body) for n, body in enumerate(bodies)), *deposits)
    finally:
        for client in clients:
            await client.aclose()


def the_log(system: System) -> dict[str, list[EventEnvelope]]:
    """Every event of every event topic, straight from Kafka, by topic."""
    return {
        topic: [EventEnvelope.model_validate_json(raw) for raw in system.read_topic(topic)]
        for topic in EVENT_TOPICS
    }


def check_versions(log: dict[str, list[EventEnvelope]]) -> None:
    for topic, events in log.items():
        ids = [e.event_id for e in events]
        assert len(ids) == len(set(ids)), f"{topic}: an event is in the log twice"
        versions: dict[str, list[int]] = defaultdict(list)
        for event in events:
            versions[event.aggregate_id].append(event.aggregate_version)
        for aggregate, seen in versions.items():
            assert sorted(seen) == list(range(1, len(seen) + 1)), f"{topic} {aggregate}: {seen}"


def by_aggregate(events: list[EventEnvelope], aggregate_id: str) -> list[EventEnvelope]:
    mine = [e for e in events if e.aggregate_id == aggregate_id]
    return sorted(mine, key=lambda e: e.aggregate_version)


@pytest.mark.parametrize("run", range(max(RUNS, 1)))
@pytest.mark.parametrize(("point", "restart"), CELLS)
def test_a_kill_on_the_write_path_loses_and_repeats_nothing(
    point: str, restart: str, run: int, kafka_bootstrap: str, tmp_path_factory: Any
) -> None:
    system = System(tmp_path_factory.mktemp("kills"))
    try:
        survivor = system.worker().wait_ready(timeout=240)
        victim = system.worker().wait_ready(timeout=240)
        api = httpx.Client(base_url=survivor.url, timeout=30.0)
        for name in BUYERS:
            customer(api, name, str(MONEY))
        for sku in SKUS:
            stock(api, sku, UNITS)
        victim.stop()  # armed for the orders only
        name, _, hit = point.partition("@")
        system.env["SHOP_FAULT"] = f"{name}:kill@{hit or 2}"
        if name == "append-mid-batch":  # every command a record batch of its own
            system.env["COMMAND_APPEND_MAX_BYTES"] = "1"
        victim.start()
        system.env.pop("SHOP_FAULT")
        system.env.pop("COMMAND_APPEND_MAX_BYTES", None)
        victim.wait_ready(timeout=240)
        bodies = orders()
        asyncio.run(place_all([survivor, victim], bodies))
        eventually(lambda: killed(victim), timeout=90)
        assert f"fault {name}: SIGKILL" in victim.log_path.read_text(errors="replace")
        # the survivor takes the victim's partitions over (its session times out) before
        # the victim is back: each cell crosses a takeover and a hand-back, not only a
        # restart under the same name (which keeps the partitions: static membership)
        eventually(lambda: owned(survivor) == list(range(8)), timeout=90)
        if restart == "empty-data":
            shutil.rmtree(victim.datadir)
        victim.start().wait_ready(timeout=240)

        finals = {b["order_id"]: final_order(api, b["order_id"]) for b in bodies}
        assert {f["status"] for f in finals.values()} == {"shipped"}, finals
        log = the_log(system)
        check_versions(log)
        for buyer in BUYERS:
            spent = sum(
                (Decimal(f["total"]) for f in finals.values() if f["customer_id"] == buyer),
                Decimal(0),
            )
            history = by_aggregate(log["accounts.events"], buyer)
            folded = ACCOUNTS.replay(buyer, history)
            assert folded.balance == MONEY + DEPOSITS - spent, buyer
            references = [
                e.payload["reference"] for e in history if e.event_type == "MoneyWithdrawn"
            ]
            assert len(references) == len(set(references)), f"{buyer} charged twice"
            row = eventually(
                lambda b=buyer, v=folded.version: (
                    r.json()
                    if (r := api.get(f"/accounts/{b}")).status_code == 200
                    and r.json()["version"] == v
                    else None
                )
            )
            assert Decimal(row["balance"]) == folded.balance
            # the command side is where the log ends: the next command is version n + 1
            deposit = api.post(f"/accounts/{buyer}/deposits", json={"amount": "0.01"})
            assert (deposit.status_code, deposit.json()["version"]) == (201, folded.version + 1)
        for sku in SKUS:
            sold = sum(
                line["quantity"]
                for f in finals.values()
                for line in f["lines"]
                if line["sku"] == sku
            )
            folded_stock = STOCKS.replay(sku, by_aggregate(log["inventory.events"], sku))
            assert (folded_stock.on_hand, folded_stock.reserved) == (UNITS - sold, 0), sku
    finally:
        system.stop()
