"""The sample traffic (app/traffic.py) against a fake shop in memory: no network.

The fake answers each command as the shop would once its saga has run, at once (an
order is paid or declined, then reserved or short and refunded), so a test can hold
the traffic's estimates against the real balances and stock at every command.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from app import traffic
from app.traffic import (
    LIMITED_SKU,
    LIMITED_UNITS,
    LOW_BALANCE,
    SKUS,
    Estimate,
    ShopState,
    account_ids,
    run,
    set_up,
    step,
)

MONEY = re.compile(r"^\d+\.\d{2}$")


class FakeShop:
    """Accounts, stock and orders in memory; `check` runs before each command is applied."""

    def __init__(self) -> None:
        self.now = 0.0
        self.balances: dict[str, Decimal] = {}
        self.stock: dict[str, int] = {}
        self.versions: Counter[str] = Counter()
        self.orders: dict[str, dict[str, Any]] = {}
        self.outcomes: Counter[str] = Counter()
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.check: Callable[[], None] = lambda: None
        self.refuse_orders = False

    def clock(self) -> float:
        return self.now

    async def command(self, path: str, body: dict[str, Any]) -> int | None:
        self.sent.append((path, body))
        await asyncio.sleep(0)  # others run while this one is on the wire
        self.check()
        parts = path.strip("/").split("/")
        match parts:
            case ["accounts"]:
                if body["account_id"] in self.balances:
                    return 409
                self.balances[body["account_id"]] = Decimal("0.00")
                return 201
            case ["accounts", account, "deposits"]:
                if account not in self.balances:
                    return 404
                self.balances[account] += Decimal(body["amount"])
                return 201
            case ["accounts", account, "withdrawals"]:
                if self.balances.get(account, Decimal(0)) < Decimal(body["amount"]):
                    return 409
                self.balances[account] -= Decimal(body["amount"])
                return 201
            case ["products", sku, "stock"]:
                expected = body.get("expected_version")
                if expected is not None and expected != self.versions[sku]:
                    return 409
                self.versions[sku] += 1
                self.stock[sku] = self.stock.get(sku, 0) + body["quantity"]
                return 201
            case ["orders"]:
                return self.place(body)
            case ["orders", order_id, "cancel"]:
                found = self.orders.get(order_id)
                if found is None:
                    return 404
                if found["status"] != "reserved":
                    return 409
                found["status"] = "cancelled"
                self.balances[found["customer"]] += found["total"]
                for line in found["lines"]:
                    self.stock[line["sku"]] += line["quantity"]
                self.outcomes["customer_request"] += 1
                return 202
        raise AssertionError(f"unexpected command {path}")

    def place(self, body: dict[str, Any]) -> int:
        if self.refuse_orders or body["order_id"] in self.orders:
            return 409
        customer, lines = body["customer_id"], body["lines"]
        total = sum((Decimal(x["unit_price"]) * x["quantity"] for x in lines), Decimal("0.00"))
        balance = self.balances.get(customer, Decimal(0))
        order = {"customer": customer, "lines": lines, "total": total, "balance": balance}
        order["status"] = "cancelled"
        self.orders[body["order_id"]] = order
        if balance < total:
            self.outcomes["payment_declined"] += 1
        elif any(self.stock.get(x["sku"], 0) < x["quantity"] for x in lines):
            self.outcomes["out_of_stock"] += 1  # paid and refunded: no change
        else:
            self.balances[customer] -= total
            for line in lines:
                self.stock[line["sku"]] -= line["quantity"]
            order["status"] = "reserved"
            self.outcomes["reserved"] += 1
        return 202


def holds_estimates_below_the_truth(shop: FakeShop, state: ShopState) -> Callable[[], None]:
    """Every estimate is a lower bound of the real figure, and never negative."""

    def check() -> None:
        for customer, estimate in state.balances.items():
            assert Decimal(0) <= estimate.level <= shop.balances.get(customer, Decimal(0))
        for sku, stock in state.stock.items():
            assert 0 <= stock.level <= shop.stock.get(sku, 0)

    return check


async def shop_after(
    steps: int, *, accounts: int = 20, together: int = 10, seed: int = 7
) -> tuple[FakeShop, ShopState]:
    """`steps` operations, `together` at a time, half a second of the clock per round."""
    shop = FakeShop()
    rng = random.Random(seed)
    state = await set_up(shop, account_ids(accounts), rng, clock=shop.clock)
    shop.check = holds_estimates_below_the_truth(shop, state)
    for _ in range(steps // together):
        await asyncio.gather(*(step(shop, state, rng) for _ in range(together)))
        shop.now += 0.5
    await asyncio.gather(*state.refills)
    return shop, state


async def test_only_the_orders_meant_to_fail_fail() -> None:
    shop, state = await shop_after(4000)
    orders = state.counts["orders"]
    assert orders == len(shop.orders) > 2000
    # every decline is a basket beyond the customer's means, every shortage the limited edition
    assert shop.outcomes["payment_declined"] == state.counts["over_budget"]
    assert shop.outcomes["out_of_stock"] == state.counts["short"]
    for outcome in ("payment_declined", "out_of_stock"):
        assert 0.01 <= shop.outcomes[outcome] / orders <= 0.05, (outcome, shop.outcomes)
    assert shop.outcomes["customer_request"] == state.counts["cancelled"] > 0
    assert state.counts["skipped"] == 0
    assert shop.stock[LIMITED_SKU] == LIMITED_UNITS  # never sold, never restocked


async def test_accounts_and_shelves_are_topped_up_before_they_run_dry() -> None:
    shop, state = await shop_after(4000)
    assert state.counts["paydays"] > 20 and state.counts["restocks"] > 10
    # every check above ran at every command: estimates never negative, never above the truth
    assert all(balance >= 0 for balance in shop.balances.values())
    withdrawals = [b for p, b in shop.sent if p.endswith("/withdrawals")]
    assert withdrawals and state.counts["withdrawals"] == len(withdrawals)


async def test_a_payday_is_sent_once_the_estimate_is_low_before_it_would_go_negative() -> None:
    shop = FakeShop()
    rng = random.Random(1)
    state = await set_up(shop, ["cust-0001"], rng, clock=shop.clock)
    shop.check = holds_estimates_below_the_truth(shop, state)
    estimate = state.balances["cust-0001"]
    for _ in range(60):
        await traffic.basket(shop, state, "cust-0001", rng)
        assert estimate.level >= 0
        if estimate.level < LOW_BALANCE:  # low: a payday is on its way (or already in)
            assert estimate.refill is not None
            await estimate.refill
            assert estimate.level >= LOW_BALANCE or state.counts["skipped"]
    assert state.counts["paydays"] >= 3
    assert shop.outcomes["payment_declined"] == 0 and state.counts["skipped"] == 0


async def test_operations_under_way_share_one_payday() -> None:
    shop = FakeShop()
    rng = random.Random(3)
    state = await set_up(shop, ["cust-0001"], rng, clock=shop.clock)
    state.balances["cust-0001"].level = Decimal("0.00")  # as if spent
    shop.balances["cust-0001"] = Decimal("0.00")
    await asyncio.gather(*(traffic.basket(shop, state, "cust-0001", rng) for _ in range(5)))
    paydays = [b for p, b in shop.sent if b.get("reference") == "payday"]
    assert 1 <= len(paydays) <= 3  # not one per order
    assert shop.outcomes["payment_declined"] == 0


async def test_the_mix_of_operations() -> None:
    shop, state = await shop_after(3000)
    kinds = Counter(
        "order"
        if path == "/orders"
        else "cancel"
        if path.endswith("/cancel")
        else "withdrawal"
        if path.endswith("/withdrawals")
        else f"deposit:{body['reference']}"
        if path.endswith("/deposits")
        else "restock"
        for path, body in shop.sent
    )
    steps = kinds["order"] + kinds["deposit:top-up"] + kinds["withdrawal"]
    assert abs(steps - 3000) < 50  # a few orders skipped or deposits in place of withdrawals
    assert 0.55 <= kinds["order"] / steps <= 0.65
    assert 0.17 <= kinds["deposit:top-up"] / steps <= 0.25
    assert 0.15 <= kinds["withdrawal"] / steps <= 0.23
    assert 0.05 <= kinds["cancel"] / kinds["order"] <= 0.12
    assert kinds["deposit:payday"] == state.counts["paydays"]


async def test_money_goes_out_as_decimal_strings_never_floats() -> None:
    shop, _ = await shop_after(500)

    def values(node: Any) -> list[Any]:
        if isinstance(node, dict):
            return [v for x in node.values() for v in values(x)]
        if isinstance(node, list):
            return [v for x in node for v in values(x)]
        return [node]

    assert not [v for _, body in shop.sent for v in values(body) if isinstance(v, float)]
    amounts = [body["amount"] for _, body in shop.sent if "amount" in body]
    prices = [
        x["unit_price"] for path, body in shop.sent if path == "/orders" for x in body["lines"]
    ]
    assert amounts and prices
    assert all(isinstance(x, str) and MONEY.match(x) for x in amounts + prices)


async def test_the_over_budget_share_is_small_and_really_over_budget() -> None:
    shop = FakeShop()
    rng = random.Random(11)
    state = await set_up(shop, account_ids(10), rng, clock=shop.clock)
    for _ in range(1500):
        await traffic.order(shop, state, rng.choice(state.customers), rng)
        await asyncio.gather(*state.refills)
        shop.now += 1.0
    beyond = sum(order["total"] > order["balance"] for order in shop.orders.values())
    assert beyond == shop.outcomes["payment_declined"] == state.counts["over_budget"]
    assert 0.01 <= beyond / len(shop.orders) <= 0.05


async def test_set_up_is_safe_to_repeat() -> None:
    shop = FakeShop()
    first = await set_up(shop, account_ids(3), random.Random(1))
    assert [path for path, _ in shop.sent[: len(SKUS)]] == [f"/products/{s}/stock" for s in SKUS]
    funded = dict(shop.balances)
    second = await set_up(shop, account_ids(3), random.Random(2))
    assert all(shop.balances[a] > funded[a] for a in funded)  # 409 on open, funded again
    assert shop.stock[LIMITED_SKU] == LIMITED_UNITS  # stocked once only (expected_version 0)
    # the second set-up's estimates count only what it put in
    for customer, estimate in second.balances.items():
        assert estimate.level == shop.balances[customer] - funded[customer]
    assert first.prices.keys() == second.prices.keys()


async def test_a_refused_order_gives_back_what_it_counted_out() -> None:
    shop = FakeShop()
    rng = random.Random(5)
    state = await set_up(shop, ["cust-0001"], rng, clock=shop.clock)
    shop.refuse_orders = True
    money = state.balances["cust-0001"].level
    stock = {sku: e.level for sku, e in state.stock.items()}
    for _ in range(20):
        await traffic.basket(shop, state, "cust-0001", rng)
        await traffic.short(shop, state, "cust-0001", rng)
    await asyncio.gather(*state.refills)
    paid_in = sum(
        (Decimal(b["amount"]) for p, b in shop.sent if b.get("reference") == "payday"),
        Decimal("0.00"),
    )
    assert state.balances["cust-0001"].level == money + paid_in
    assert {sku: e.level for sku, e in state.stock.items()} == stock


def test_what_a_cancellation_gives_back_counts_only_once_settled() -> None:
    estimate = Estimate(Decimal("10.00"))
    estimate.give_back_later(Decimal("5.00"), when=60.0)
    estimate.settle(59.0)
    assert estimate.level == Decimal("10.00") and estimate.expected() == Decimal("15.00")
    estimate.settle(60.0)
    assert estimate.level == Decimal("15.00") and not estimate.returning
    assert not estimate.take(Decimal("15.01")) and estimate.level == Decimal("15.00")


@pytest.mark.parametrize(("cap", "most_at_once"), [(None, 40), (5, 5)])
async def test_run_starts_operations_at_the_rate_whatever_they_take(
    monkeypatch: pytest.MonkeyPatch, cap: int | None, most_at_once: int
) -> None:
    started: list[float] = []
    under_way = [0]
    peak = [0]

    async def slow_step(client: Any, state: ShopState, rng: random.Random) -> None:
        started.append(time.monotonic())
        under_way[0] += 1
        peak[0] = max(peak[0], under_way[0])
        await asyncio.sleep(1.0)  # far slower than the schedule
        under_way[0] -= 1

    monkeypatch.setattr(traffic, "step", slow_step)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.5, stop.set)
    state = ShopState(prices={}, balances={}, stock={})
    begun = time.monotonic()
    await run(FakeShop(), state, 100.0, stop, random.Random(0), max_in_flight=cap)
    assert under_way[0] == 0  # it waited for the ones under way
    assert time.monotonic() - begun >= 1.0
    if cap is None:
        assert 40 <= len(started) <= 55  # 100/s for 0.5 s, open loop
        assert peak[0] >= most_at_once
    else:
        assert peak[0] == most_at_once and len(started) <= 10
