"""The saga under load, with two real workers: no oversell, money and stock conserved,
every read model equal to a fold of the event store, and a SIGKILLed worker loses
nothing and charges no one twice.

Sizes scale with SAGA_LOAD_ORDERS (the conservation run) and SAGA_KILL_ORDERS.
Every wait is bounded; nothing asserts on timing. Numbers are printed (`-s`).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.accounts import ACCOUNTS
from domain.inventory import STOCKS
from domain.orders import ORDERS
from tests.integration.saga_helpers import (
    FINAL,
    post_until_answered,
    read_topic,
    replay,
    wait_all_final,
    wait_balance,
    wait_for_status,
    wait_stock,
)
from tests.system import System, Worker

pytestmark = pytest.mark.integration

LOAD_ORDERS = int(os.environ.get("SAGA_LOAD_ORDERS", "1000"))
KILL_ORDERS = int(os.environ.get("SAGA_KILL_ORDERS", "300"))
CHARGED = ("shipped", "completed")


@pytest.fixture(scope="module")
def workers(system: System) -> list[Worker]:
    first, second = system.worker(), system.worker()
    return [first.wait_ready(timeout=180), second.wait_ready(timeout=180)]


@pytest.fixture(scope="module")
def api(workers: list[Worker]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=workers[0].url, timeout=30.0) as client:
        yield client


def report(line: str) -> None:
    print(f"\n[saga-load] {line}", flush=True)


async def _setup(
    urls: list[str], money: dict[str, Decimal], stock: dict[str, int], prefix: str
) -> None:
    """Open and fund the accounts and stock the SKUs, through both workers, concurrently."""
    clients = [httpx.AsyncClient(base_url=url, timeout=60.0) for url in urls]
    gate = asyncio.Semaphore(16)

    async def account(n: int, name: str, amount: Decimal) -> None:
        async with gate:
            opened = await post_until_answered(
                clients, "/accounts", {"account_id": name, "owner": name}, f"{prefix}-open-{name}", first=n
            )
            assert opened.status_code == 201, opened.text
            if amount > 0:
                deposit = await post_until_answered(
                    clients,
                    f"/accounts/{name}/deposits",
                    {"amount": str(amount)},
                    f"{prefix}-fund-{name}",
                    first=n,
                )
                assert deposit.status_code == 201, deposit.text

    async def product(n: int, sku: str, quantity: int) -> None:
        async with gate:
            added = await post_until_answered(
                clients, f"/products/{sku}/stock", {"quantity": quantity}, f"{prefix}-stock-{sku}",
                first=n,
            )
            assert added.status_code == 201, added.text

    try:
        await asyncio.gather(
            *(account(n, name, amount) for n, (name, amount) in enumerate(money.items())),
            *(product(n, sku, quantity) for n, (sku, quantity) in enumerate(stock.items())),
        )
    finally:
        for client in clients:
            await client.aclose()


def _total(body: dict[str, Any]) -> Decimal:
    return sum(
        (Decimal(line["unit_price"]) * line["quantity"] for line in body["lines"]), Decimal(0)
    ) - Decimal(body.get("discount", "0"))


def _check_money_and_stock(
    api: httpx.Client,
    finals: dict[str, dict[str, Any]],
    money: dict[str, Decimal],
    stock: dict[str, int],
) -> tuple[dict[str, Decimal], dict[str, int]]:
    """Balances = deposit - totals of charged orders; on hand = initial - shipped; none reserved."""
    spent: dict[str, Decimal] = defaultdict(Decimal)
    sold: Counter[str] = Counter()
    for order in finals.values():
        if order["status"] in CHARGED:
            spent[order["customer_id"]] += Decimal(order["total"])
            for line in order["lines"]:
                sold[line["sku"]] += line["quantity"]
    balances = {
        name: wait_balance(api, name, amount - spent[name], timeout=120)
        for name, amount in money.items()
    }
    levels = {}
    for sku, quantity in stock.items():
        row = wait_stock(api, sku, on_hand=quantity - sold[sku], reserved=0, timeout=120)
        assert row["available"] == row["on_hand"] >= 0, row
        levels[sku] = row["on_hand"]
    return balances, levels


# --- many customers, one scarce SKU ------------------------------------------------------------


def test_customers_racing_for_scarce_stock_never_oversell(
    workers: list[Worker], api: httpx.Client
) -> None:
    buyers = {f"racer-{n}": Decimal("50.00") for n in range(40)}
    urls = [w.url for w in workers]
    asyncio.run(_setup(urls, buyers, {"SCARCE": 10}, "race"))
    started = time.monotonic()

    async def race() -> list[httpx.Response]:
        clients = [httpx.AsyncClient(base_url=url, timeout=60.0) for url in urls]
        try:
            return await asyncio.gather(
                *(
                    clients[n % 2].post(
                        "/orders",
                        json={
                            "order_id": f"race-{n}",
                            "customer_id": name,
                            "lines": [{"sku": "SCARCE", "quantity": 1, "unit_price": "10.00"}],
                        },
                    )
                    for n, name in enumerate(buyers)
                )
            )
        finally:
            for client in clients:
                await client.aclose()

    answers = asyncio.run(race())
    assert [a.status_code for a in answers] == [202] * len(buyers), [a.text for a in answers]
    finals = asyncio.run(wait_all_final(urls, [f"race-{n}" for n in range(len(buyers))]))
    statuses = Counter(o["status"] for o in finals.values())
    assert statuses == {"shipped": 10, "cancelled": 30}, statuses
    reasons = {o["cancel_reason"] for o in finals.values() if o["status"] == "cancelled"}
    assert reasons == {"out_of_stock"}

    _check_money_and_stock(api, finals, buyers, {"SCARCE": 10})
    row = api.get("/products/SCARCE").json()
    assert (row["on_hand"], row["reserved"], row["available"]) == (0, 0, 0)
    assert row["reserved"] + row["available"] == row["on_hand"]
    report(f"race: 40 buyers, 10 units: {dict(statuses)} in {time.monotonic() - started:.1f}s")


# --- conservation under a mixed load on two workers ---------------------------------------------


def _random_orders(
    rng: random.Random, count: int, people: list[str], skus: list[str], prefix: str
) -> list[dict[str, Any]]:
    orders = []
    for n in range(count):
        lines = [
            {
                "sku": sku,
                "quantity": rng.randrange(1, 4),
                "unit_price": f"{rng.randrange(1, 40)}.{rng.randrange(100):02d}",
            }
            for sku in rng.sample(skus, rng.choice([1, 1, 2, 2, 3, 4]))
        ]
        body: dict[str, Any] = {
            "order_id": f"{prefix}-{n}",
            "customer_id": rng.choice(people),
            "lines": lines,
        }
        if rng.random() < 0.2:
            body["discount"] = "0.50"
        orders.append(body)
    return orders


async def _place_all(
    urls: list[str],
    orders: list[dict[str, Any]],
    cancel_every: int,
    concurrency: int = 12,
    during: Any = None,
) -> dict[str, int]:
    """Place every order (alternating workers, retried with its Idempotency-Key through
    failures), cancel some right after; `during(n)` runs after the n-th answer."""
    clients = [httpx.AsyncClient(base_url=url, timeout=30.0) for url in urls]
    gate = asyncio.Semaphore(concurrency)
    outcomes: Counter[str] = Counter()
    answered = 0

    async def one(n: int, body: dict[str, Any]) -> None:
        nonlocal answered
        async with gate:
            order_id = body["order_id"]
            placed = await post_until_answered(clients, "/orders", body, f"place-{order_id}", first=n)
            assert placed.status_code == 202, placed.text
            assert placed.json()["order_id"] == order_id
            outcomes["placed"] += 1
            if n % cancel_every == 0:
                cancelled = await post_until_answered(
                    clients, f"/orders/{order_id}/cancel", {}, f"cancel-{order_id}", first=n + 1
                )
                assert cancelled.status_code in (202, 409), cancelled.text
                outcomes[f"cancel {cancelled.status_code}"] += 1
            answered += 1
            if during is not None:
                await during(answered)

    try:
        await asyncio.gather(*(one(n, body) for n, body in enumerate(orders)))
    finally:
        for client in clients:
            await client.aclose()
    return dict(outcomes)


async def _from_both(urls: list[str], order_ids: list[str]) -> list[dict[str, Any]]:
    """Each order as each worker answers it (one owns it, the other routes to the owner)."""
    clients = [httpx.AsyncClient(base_url=url, timeout=30.0) for url in urls]
    gate = asyncio.Semaphore(16)

    async def get(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
        async with gate:
            response = await client.get(f"/orders/{order_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    try:
        return list(
            await asyncio.gather(*(get(c, o) for c in clients for o in order_ids))
        )
    finally:
        for client in clients:
            await client.aclose()


def test_a_mixed_load_on_two_workers_conserves_money_and_stock_and_matches_the_log(
    system: System, workers: list[Worker], api: httpx.Client
) -> None:
    rng = random.Random(20240611)
    urls = [w.url for w in workers]
    money = {
        f"mix-{n}": Decimal(rng.choice(["0", "15.00", "60.00", "250.00", "1000.00", "5000.00"]))
        for n in range(100)
    }
    stock = {f"MIX-{n}": rng.randrange(20, 150) for n in range(20)}
    asyncio.run(_setup(urls, money, stock, "mix"))
    orders = _random_orders(rng, LOAD_ORDERS, sorted(money), sorted(stock), "mixo")

    started = time.monotonic()
    placed = asyncio.run(_place_all(urls, orders, cancel_every=13))
    placed_in = time.monotonic() - started
    ids = [o["order_id"] for o in orders]
    finals = asyncio.run(wait_all_final(urls, ids, timeout=240))
    settled_in = time.monotonic() - started

    # the client completes some of the shipped orders
    shipped = sorted(o for o, order in finals.items() if order["status"] == "shipped")
    for order_id in shipped[::10]:
        assert api.post(f"/orders/{order_id}/complete").status_code == 202
    for order_id in shipped[::10]:
        finals[order_id] = wait_for_status(api, order_id, ["completed"])

    for body in orders:  # the read model has what was ordered
        final = finals[body["order_id"]]
        assert final["customer_id"] == body["customer_id"]
        assert Decimal(final["total"]) == _total(body)
    statuses = Counter(o["status"] for o in finals.values())
    reasons = Counter(o["cancel_reason"] for o in finals.values() if o["status"] == "cancelled")
    assert statuses["shipped"] + statuses["completed"] > 0
    assert reasons["payment_declined"] > 0 and reasons["out_of_stock"] > 0, reasons

    balances, levels = _check_money_and_stock(api, finals, money, stock)

    # routing: both workers answer every order the same
    both = asyncio.run(_from_both(urls, ids))
    first, second = both[: len(ids)], both[len(ids):]
    for a, b in zip(first, second, strict=True):
        assert a == b, (a, b)
        assert a == finals[a["order_id"]] or a["status"] == "completed"

    # every read model equals a fold of the event store, read from offset 0
    async def the_log() -> tuple[list[Any], list[Any], list[Any]]:
        return await asyncio.gather(
            read_topic(system.bootstrap, system.topic("orders.events")),
            read_topic(system.bootstrap, system.topic("accounts.events")),
            read_topic(system.bootstrap, system.topic("inventory.events")),
        )

    order_events, account_events, stock_events = asyncio.run(the_log())
    folded = replay(ORDERS, order_events)
    assert set(ids) <= set(folded)
    for order in first:
        state = folded[order["order_id"]]
        assert (order["status"], Decimal(order["total"]), order["version"]) == (
            state.status,
            state.total,
            state.version,
        ), order["order_id"]
    accounts = replay(ACCOUNTS, account_events)
    for name, amount in balances.items():
        assert accounts[name].balance == amount, name
        view = api.get(f"/accounts/{name}").json()
        assert view["version"] == accounts[name].version, name
    stocks = replay(STOCKS, stock_events)
    for sku, on_hand in levels.items():
        assert (stocks[sku].on_hand, stocks[sku].reserved) == (on_hand, 0), sku
        assert api.get(f"/products/{sku}").json()["version"] == stocks[sku].version, sku

    # no order paid twice: net withdrawals per order are one if charged, else zero
    net: Counter[str] = Counter()
    for event in account_events:
        reference = event.payload.get("reference") or ""
        kind, _, order_id = reference.partition(":")
        if kind == "payment":
            net[order_id] += 1
        elif kind == "refund":
            net[order_id] -= 1
    for order_id, order in finals.items():
        assert net[order_id] == (1 if order["status"] in CHARGED else 0), (order_id, order)

    report(
        f"mixed load: {len(orders)} orders, {len(money)} customers, {len(stock)} SKUs, "
        f"2 workers; placed in {placed_in:.1f}s ({len(orders) / placed_in:.1f}/s), "
        f"all final after {settled_in:.1f}s; {dict(statuses)}; cancel reasons "
        f"{dict(reasons)}; client {placed}; {len(order_events)} order events, "
        f"{len(account_events)} account events, {len(stock_events)} stock events"
    )


# --- a worker killed mid-load ----------------------------------------------------------------------


def test_a_worker_killed_mid_load_leaves_no_order_stuck_and_charges_none_twice(
    system: System, workers: list[Worker], api: httpx.Client
) -> None:
    survivor, victim = workers
    rng = random.Random(99)
    urls = [w.url for w in workers]
    money = {f"kbuyer-{n}": Decimal(rng.choice(["20.00", "100.00", "500.00"])) for n in range(40)}
    stock = {f"KILL-{n}": rng.randrange(30, 120) for n in range(8)}
    asyncio.run(_setup(urls, money, stock, "kill"))
    orders = _random_orders(rng, KILL_ORDERS, sorted(money), sorted(stock), "kill")
    events: dict[str, float] = {}
    started = time.monotonic()

    async def crash_and_restart(answered: int) -> None:
        if answered == KILL_ORDERS // 3 and "killed" not in events:
            events["killed"] = time.monotonic() - started
            victim.kill()  # SIGKILL
            report(f"kill: SIGKILLed {victim.name} (pid gone) after {answered} orders")
        if answered == KILL_ORDERS // 2 and "restarted" not in events:
            events["restarted"] = time.monotonic() - started
            victim.start()  # same name, port and data dir
            report(f"kill: restarted {victim.name} on port {victim.port}")

    placed = asyncio.run(_place_all(urls, orders, cancel_every=11, during=crash_and_restart))
    assert set(events) == {"killed", "restarted"}
    victim.wait_ready(timeout=180)
    ids = [o["order_id"] for o in orders]
    finals = asyncio.run(wait_all_final(urls, ids, timeout=240))
    settled_in = time.monotonic() - started

    statuses = Counter(o["status"] for o in finals.values())
    _check_money_and_stock(api, finals, money, stock)
    # each order charged at most once, and exactly once if it shipped
    account_events = asyncio.run(read_topic(system.bootstrap, system.topic("accounts.events")))
    payments: Counter[str] = Counter()
    refunds: Counter[str] = Counter()
    for event in account_events:
        kind, _, order_id = (event.payload.get("reference") or "").partition(":")
        if order_id.startswith("kill-"):
            (payments if kind == "payment" else refunds)[order_id] += 1
    for order_id, order in finals.items():
        assert payments[order_id] <= 1 and refunds[order_id] <= 1, order_id
        expected = 1 if order["status"] in CHARGED else 0
        assert payments[order_id] - refunds[order_id] == expected, (order_id, order)
    folded = replay(ACCOUNTS, account_events)  # versions 1..n, no gap, no repeat
    assert all(folded[name].version >= 1 for name in money)

    report(
        f"kill: {len(orders)} orders, killed at {events['killed']:.1f}s, restarted at "
        f"{events['restarted']:.1f}s, all final after {settled_in:.1f}s; {dict(statuses)}; "
        f"client {placed}; victim log {victim.log_path}"
    )
    assert all(o["status"] in FINAL for o in finals.values())
