"""The order saga against the real broker: every path ends right, money and stock add up.

Two workers share the partitions; commands and queries go to either one.
"""

from __future__ import annotations

import asyncio
import random
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.system import System, Worker

pytestmark = pytest.mark.integration

FINAL = ("shipped", "completed", "cancelled")


@pytest.fixture(scope="module")
def workers(system: System) -> list[Worker]:
    first, second = system.worker(), system.worker()
    return [first.wait_ready(), second.wait_ready()]


@pytest.fixture(scope="module")
def api(workers: list[Worker]) -> httpx.Client:
    return httpx.Client(base_url=workers[0].url, timeout=30.0)


@pytest.fixture(scope="module")
def other(workers: list[Worker]) -> httpx.Client:
    return httpx.Client(base_url=workers[1].url, timeout=30.0)


def eventually(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {value!r}")
        time.sleep(0.1)


def customer_orders(api: httpx.Client, customer_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/customers/{customer_id}/orders")
    assert response.status_code == 200, response.text
    return list(response.json()["orders"])


def orders_in_status(api: httpx.Client, status: str) -> list[dict[str, Any]]:
    """Every order in `status`, page by page."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        params = {"status": status, "limit": "100", **({"after": after} if after else {})}
        page = api.get("/orders", params=params).json()
        found += page["orders"]
        if (after := page["next_after"]) is None:
            return found


def final_order(api: httpx.Client, order_id: str) -> dict[str, Any]:
    def check() -> Any:
        response = api.get(f"/orders/{order_id}")
        if response.status_code == 200 and response.json()["status"] in FINAL:
            return response.json()
        last[0] = f"{response.status_code} {response.text[:300]}; timeline: " + str(
            [
                (step["service"], step["event_type"])
                for step in api.get(f"/orders/{order_id}/timeline").json().get("steps", [])
            ]
        )
        return None

    last = [""]
    try:
        return dict(eventually(check))
    except AssertionError as exc:
        raise AssertionError(f"{order_id} not final: {last[0]}") from exc


def customer(api: httpx.Client, name: str, money: str) -> None:
    assert api.post("/accounts", json={"account_id": name, "owner": name}).status_code == 201
    if Decimal(money) > 0:
        assert api.post(f"/accounts/{name}/deposits", json={"amount": money}).status_code == 201


def stock(api: httpx.Client, sku: str, quantity: int) -> None:
    response = api.post(f"/products/{sku}/stock", json={"quantity": quantity})
    assert response.status_code == 201, response.text


def place(
    api: httpx.Client, order_id: str, who: str, *lines: tuple[str, int, str], **extra: Any
) -> httpx.Response:
    body = {
        "order_id": order_id,
        "customer_id": who,
        "lines": [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines],
        **extra,
    }
    return api.post("/orders", json=body)


def balance(api: httpx.Client, who: str) -> Decimal | None:
    """The account's balance as its read model has it (None while it has not folded the
    account yet: read models trail the log by up to FOLD_FOLLOW_WAIT_MS)."""
    response = api.get(f"/accounts/{who}")
    return Decimal(response.json()["balance"]) if response.status_code == 200 else None


def settled_stock(api: httpx.Client, sku: str, on_hand: int) -> dict[str, Any]:
    return dict(
        eventually(
            lambda: (
                (s := api.get(f"/products/{sku}").json())["on_hand"] == on_hand
                and s["reserved"] == 0
                and s
            )
        )
    )


def test_an_order_is_paid_reserved_shipped_and_completed(
    api: httpx.Client, other: httpx.Client
) -> None:
    customer(api, "alice", "100.00")
    stock(api, "MUG", 10)
    address = {
        "name": "Alice",
        "street": "1 Main St",
        "city": "Lyon",
        "postal_code": "69001",
        "country": "FR",
    }
    placed = place(
        api, "happy-1", "alice", ("MUG", 2, "12.50"), discount="5.00", shipping_address=address
    )
    assert placed.status_code == 202, placed.text
    assert placed.json()["order_status"] == "pending"
    order = final_order(other, "happy-1")  # asked of the other worker: routed to the owner
    assert order["status"] == "shipped" and order["total"] == "20.00"
    assert order["shipping_address"]["city"] == "Lyon"
    completed = other.post("/orders/happy-1/complete")
    assert completed.status_code == 202, completed.text
    assert final_order(api, "happy-1")["status"] in ("shipped", "completed")
    eventually(lambda: api.get("/orders/happy-1").json()["status"] == "completed")
    eventually(lambda: balance(api, "alice") == Decimal("80.00"))
    settled_stock(api, "MUG", 8)

    steps = eventually(
        lambda: (
            (s := api.get("/orders/happy-1/timeline").json()["steps"])
            and any(step["event_type"] == "OrderCompleted" for step in s)
            and s
        )
    )
    kinds = [(s["service"], s["event_type"]) for s in steps]
    for expected in [
        ("orders", "OrderPlaced"),
        ("payments", "PaymentCaptured"),
        ("orders", "OrderPaid"),
        ("inventory", "InventoryReserved"),
        ("shipping", "ShipmentCreated"),
        ("orders", "OrderShipped"),
        ("orders", "OrderCompleted"),
    ]:
        assert expected in kinds
    seen = {steps[0]["event_id"]}
    for step in steps[1:]:
        if step["event_type"] != "OrderCompleted":
            assert step["caused_by"] in seen, step  # every step's cause came before it
        seen.add(step["event_id"])
    history = api.get("/accounts/alice/events").json()["events"]
    payment = history[-1]
    assert payment["event_type"] == "MoneyWithdrawn" and payment["correlation_id"] == "happy-1"
    assert payment["payload"]["reference"] == "payment:happy-1"


def test_a_declined_payment_cancels_the_order(api: httpx.Client) -> None:
    customer(api, "bob", "5.00")
    stock(api, "PEN", 3)
    assert place(api, "poor-1", "bob", ("PEN", 1, "9.99")).status_code == 202
    assert place(api, "ghost-1", "nobody-here", ("PEN", 1, "1.00")).status_code == 202
    poor, ghost = final_order(api, "poor-1"), final_order(api, "ghost-1")
    assert (poor["status"], poor["cancel_reason"]) == ("cancelled", "payment_declined")
    assert poor["cancel_detail"] == "insufficient_funds"
    assert (ghost["status"], ghost["cancel_detail"]) == ("cancelled", "not_found")
    eventually(lambda: balance(api, "bob") == Decimal("5.00"))
    settled_stock(api, "PEN", 3)


def test_out_of_stock_on_one_line_refunds_and_releases_the_others(api: httpx.Client) -> None:
    customer(api, "carol", "100.00")
    stock(api, "BOOK", 5)
    stock(api, "RARE", 1)
    assert (
        place(api, "short-1", "carol", ("BOOK", 2, "10.00"), ("RARE", 2, "15.00")).status_code
        == 202
    )
    order = final_order(api, "short-1")
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "out_of_stock")
    assert "RARE" in order["cancel_detail"]
    eventually(lambda: balance(api, "carol") == Decimal("100.00"))
    settled_stock(api, "BOOK", 5)
    settled_stock(api, "RARE", 1)


def test_cancel_before_shipping_restores_money_and_stock(api: httpx.Client) -> None:
    customer(api, "dave", "50.00")
    stock(api, "HAT", 4)
    assert place(api, "cancel-1", "dave", ("HAT", 1, "20.00")).status_code == 202
    cancelled = api.post("/orders/cancel-1/cancel", json={"reason": "changed_mind"})
    order = final_order(api, "cancel-1")
    if cancelled.status_code == 202:
        assert (order["status"], order["cancel_reason"]) == ("cancelled", "changed_mind")
        eventually(lambda: balance(api, "dave") == Decimal("50.00"))
        settled_stock(api, "HAT", 4)
    else:  # the saga was faster than the client: it had shipped already
        assert cancelled.status_code == 409 and order["status"] == "shipped"
        assert cancelled.json()["error"] == "invalid_transition"
    again = api.post("/orders/cancel-1/cancel")
    assert again.status_code == 409 and "cannot cancel" in again.json()["reason"]
    assert api.post("/orders/cancel-1/complete").status_code in (202, 409)
    assert api.post("/orders/never-placed/cancel").status_code == 404


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),
        ([{"sku": "X", "quantity": 0, "unit_price": "1.00"}], "lines.0.quantity"),
        ([{"sku": "X", "quantity": 1, "unit_price": "0"}], "lines.0.unit_price"),
        ([{"sku": "X", "quantity": 1, "unit_price": 1.5}], "lines.0.unit_price"),
        ([{"sku": "X", "quantity": 1, "unit_price": "1.00"}] * 2, "lines"),
        ([{"sku": f"S{i}", "quantity": 1, "unit_price": "1.00"} for i in range(51)], "lines"),
    ],
)
def test_bad_orders_are_refused_naming_the_field(
    api: httpx.Client, lines: list[dict[str, Any]], field: str
) -> None:
    response = api.post("/orders", json={"customer_id": "alice", "lines": lines})
    assert response.status_code == 422, response.text
    assert field in [f["field"] for f in response.json()["fields"]]


def test_read_models_by_customer_and_by_status(api: httpx.Client, other: httpx.Client) -> None:
    customer(api, "erin", "0")
    for n in range(3):
        assert place(api, f"erin-{n}", "erin", ("PEN", 1, "1.00")).status_code == 202
    for n in range(3):
        final_order(api, f"erin-{n}")

    # the per-customer view is fed through a repartition topic: it catches up shortly
    def all_cancelled() -> list[dict[str, Any]] | None:
        response = other.get("/customers/erin/orders")
        if response.status_code == 503:  # its partition is catching up: ask again
            return None
        rows: list[dict[str, Any]] = response.json()["orders"]
        return rows if {row["status"] for row in rows} == {"cancelled"} else None

    listed = eventually(all_cancelled)
    assert sorted(row["order_id"] for row in listed) == ["erin-0", "erin-1", "erin-2"]

    def page_of(params: dict[str, str]) -> dict[str, Any] | None:
        response = other.get("/orders", params=params)  # 503 while catching up
        return dict(response.json()) if response.status_code == 200 else None

    def cancelled_pages() -> list[str] | None:
        """Every order listed as cancelled, two per page; None until the three are (the
        status view is fed through its own repartition topic)."""
        seen: list[str] = []
        after = None
        while True:
            params = {"status": "cancelled", "limit": "2", **({"after": after} if after else {})}
            page = eventually(lambda p=params: page_of(p))
            seen += [row["order_id"] for row in page["orders"]]
            after = page["next_after"]
            if after is None:
                break
        return seen if {"erin-0", "erin-1", "erin-2"} <= set(seen) else None

    seen = eventually(cancelled_pages)
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert other.get("/orders", params={"status": "lost"}).status_code == 422


def test_the_same_idempotency_key_places_one_order(api: httpx.Client) -> None:
    body = {"customer_id": "alice", "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "1.00"}]}
    first = api.post("/orders", json=body, headers={"Idempotency-Key": "order-once"})
    second = api.post("/orders", json=body, headers={"Idempotency-Key": "order-once"})
    assert first.status_code == second.status_code == 202
    assert first.json()["order_id"] == second.json()["order_id"]
    assert first.json()["events"] == second.json()["events"]


async def place_when_admitted(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    """POST /orders as a client should: a 503 `saga_busy` is tried again after its
    Retry-After (nothing was placed), the same order id each time."""
    while True:
        response = await client.post("/orders", json=body)
        if response.status_code != 503 or response.json()["error"] != "saga_busy":
            return response
        await asyncio.sleep(float(response.headers["Retry-After"]) / 4)


def test_customers_racing_for_scarce_stock_never_oversell(
    workers: list[Worker], api: httpx.Client
) -> None:
    buyers = [f"racer-{n}" for n in range(30)]
    for name in buyers:
        customer(api, name, "100.00")
    stock(api, "SCARCE", 8)

    async def race() -> None:
        clients = [httpx.AsyncClient(base_url=w.url, timeout=30.0) for w in workers]
        await asyncio.gather(
            *(
                place_when_admitted(
                    clients[n % 2],
                    {
                        "order_id": f"race-{n}",
                        "customer_id": name,
                        "lines": [{"sku": "SCARCE", "quantity": 1, "unit_price": "10.00"}],
                    },
                )
                for n, name in enumerate(buyers)
            )
        )
        for client in clients:
            await client.aclose()

    asyncio.run(race())
    outcomes = [final_order(api, f"race-{n}") for n in range(len(buyers))]
    shipped = [o for o in outcomes if o["status"] == "shipped"]
    assert len(shipped) == 8
    assert {o["cancel_reason"] for o in outcomes if o not in shipped} == {"out_of_stock"}
    settled = settled_stock(api, "SCARCE", 0)
    assert settled["available"] == 0
    for n, name in enumerate(buyers):
        expected = Decimal("90.00") if outcomes[n]["status"] == "shipped" else Decimal("100.00")
        eventually(lambda who=name, want=expected: balance(api, who) == want)


def test_a_mixed_load_conserves_money_and_stock(workers: list[Worker], api: httpx.Client) -> None:
    rng = random.Random(11)
    people = {f"mix-{n}": Decimal(rng.choice(["0", "20", "200", "1000"])) for n in range(25)}
    skus = {f"MIX-{n}": rng.randrange(5, 40) for n in range(8)}
    for name, money in people.items():
        customer(api, name, str(money))
    for sku, quantity in skus.items():
        stock(api, sku, quantity)
    orders: dict[str, dict[str, Any]] = {}
    for n in range(150):
        lines = rng.sample(sorted(skus), rng.randrange(1, 4))
        orders[f"mix-o{n}"] = {
            "order_id": f"mix-o{n}",
            "customer_id": rng.choice(sorted(people)),
            "lines": [
                {
                    "sku": s,
                    "quantity": rng.randrange(1, 4),
                    "unit_price": f"{rng.randrange(1, 50)}.99",
                }
                for s in lines
            ],
        }

    async def load() -> None:
        clients = [httpx.AsyncClient(base_url=w.url, timeout=60.0) for w in workers]
        gate = asyncio.Semaphore(16)

        async def one(n: int, body: dict[str, Any]) -> None:
            async with gate:
                response = await place_when_admitted(clients[n % 2], body)
                assert response.status_code == 202, response.text
                if n % 10 == 0:
                    await clients[n % 2].post(f"/orders/{body['order_id']}/cancel")

        await asyncio.gather(*(one(n, body) for n, body in enumerate(orders.values())))
        for client in clients:
            await client.aclose()

    asyncio.run(load())
    finals = {order_id: final_order(api, order_id) for order_id in orders}
    shipped = [o for o in finals.values() if o["status"] == "shipped"]
    assert shipped and len(shipped) < len(finals)
    for name, money in people.items():
        spent = sum((Decimal(o["total"]) for o in shipped if o["customer_id"] == name), Decimal(0))
        eventually(lambda who=name, want=money - spent: balance(api, who) == want)
    for sku, quantity in skus.items():
        sold = sum(line["quantity"] for o in shipped for line in o["lines"] if line["sku"] == sku)
        settled_stock(api, sku, quantity - sold)


def test_a_worker_killed_mid_run_leaves_no_order_stuck_and_charges_none_twice(
    workers: list[Worker], api: httpx.Client
) -> None:
    """Multi-line orders from many customers while one worker is SIGKILLed: every
    service's partitions move mid-saga (payments answers, reservation fan-out)."""
    survivor, victim = workers
    buyers = [f"kill-buyer-{n}" for n in range(10)]
    skus = [f"KILL-{n}" for n in range(6)]
    for name in buyers:
        customer(api, name, "10000.00")
    for sku in skus:
        stock(api, sku, 1000)
    rng = random.Random(5)
    bodies: list[dict[str, Any]] = [
        {
            "order_id": f"kill-{n}",
            "customer_id": buyers[n % len(buyers)],
            "lines": [
                {"sku": sku, "quantity": rng.randrange(1, 3), "unit_price": "3.00"}
                for sku in rng.sample(skus, rng.randrange(1, 4))
            ],
        }
        for n in range(120)
    ]

    async def load() -> None:
        async with httpx.AsyncClient(base_url=survivor.url, timeout=60.0) as client:
            gate = asyncio.Semaphore(8)

            async def one(n: int, body: dict[str, Any]) -> None:
                async with gate:
                    while True:  # retry through the rebalance with the same order id
                        try:
                            response = await client.post("/orders", json=body)
                            if response.status_code in (202, 409):
                                return
                        except httpx.HTTPError:
                            pass
                        await asyncio.sleep(0.5)

            async def killer() -> None:
                await asyncio.sleep(2.0)
                victim.kill()
                await asyncio.sleep(4.0)
                victim.start()

            await asyncio.gather(killer(), *(one(n, b) for n, b in enumerate(bodies)))

    asyncio.run(load())
    victim.wait_ready()
    finals = {b["order_id"]: final_order(api, b["order_id"]) for b in bodies}
    assert {o["status"] for o in finals.values()} == {"shipped"}, finals
    for name in buyers:
        spent = sum(
            (Decimal(o["total"]) for o in finals.values() if o["customer_id"] == name), Decimal(0)
        )
        eventually(lambda who=name, want=Decimal("10000.00") - spent: balance(api, who) == want)
        history = api.get(f"/accounts/{name}/events").json()["events"]
        paid = [e["payload"]["reference"] for e in history if e["event_type"] == "MoneyWithdrawn"]
        assert len(paid) == len(set(paid))  # no order charged twice
    for sku in skus:
        sold = sum(line["quantity"] for b in bodies for line in b["lines"] if line["sku"] == sku)
        settled_stock(api, sku, 1000 - sold)
    # the order fold's indexes, read on every partition, agree with the orders
    for name in buyers:
        mine = {o for o, f in finals.items() if f["customer_id"] == name}
        listed = eventually(
            lambda who=name, want=mine: (
                {o["order_id"]: o["status"] for o in customer_orders(api, who)}
                == dict.fromkeys(want, "shipped")
            )
        )
        assert listed
    shipped = {o["order_id"] for o in orders_in_status(api, "shipped")}
    assert set(finals) <= shipped
    for status in ("pending", "paid", "reserved"):
        assert not set(finals) & {o["order_id"] for o in orders_in_status(api, status)}, status
