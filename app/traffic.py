"""The sample shop traffic: `shop traffic` (what `make start` runs) and the soak's load.

    state = await set_up(client, account_ids(20), rng)   # open and fund, stock the shelves
    await run(client, state, rate, stop, rng)             # open loop until `stop` is set

What it does. `set_up` stocks SKU-001..SKU-010 (one after another, in that order), stocks
the limited edition LIMITED_SKU once, and opens and funds the accounts (409, already
open, is fine: it funds them all the same). `run` starts `rate` operations a second on a
fixed schedule (open loop: a slow answer never delays the next start) until `stop` is
set, then waits for the ones under way. An operation is one customer, picked at random:

- ORDER_SHARE: an order of 1-3 lines, 1-3 of each, at the shop's price list (CANCEL_SHARE
  of the accepted ones are then cancelled by the customer);
- DEPOSIT_SHARE: the customer pays in a little; the rest: takes out what they can spare.

Why it looks like a shop. Customers do not spend money they have not got, and shelves
are refilled: the traffic keeps an estimate of each account's balance and each SKU's
stock from what it sent and how the shop answered. Money and units are counted out when
an order or a withdrawal is sent (so operations under way together never count on the
same money), back in at once when the shop refuses the command, and in when a deposit or
a restock is accepted. What a cancellation gives back (the refund, the released stock)
is counted back in only SETTLE_SECONDS later, when the saga has surely done it; a command
that got no answer stays counted out. So each estimate is a lower bound of the real
figure, and when it falls under LOW_BALANCE (LOW_STOCK) the traffic sends a payday
deposit (a restock) in the background, one at a time; an operation that would take an
estimate under zero waits for it. An ordinary order is therefore never declined nor short.

Failures on purpose, a few percent of the orders each, so the unhappy paths keep running:

- OVER_BUDGET_SHARE: a basket beyond the customer's means (more than twice the estimate,
  plus the largest payday and deposit that may be on their way): payment_declined;
- SHORT_SHARE: more of the limited edition than there has ever been (it is stocked once
  with LIMITED_UNITS, `expected_version` 0, so a second set-up adds none: 409): paid,
  then cancelled out_of_stock and refunded.

`ShopState.counts` tallies what was done (orders, over_budget, short, cancelled, paydays,
restocks, ...), so a harness can hold the shop's final order statuses against it.

Money is Decimal throughout, sent as strings with two places: never a float.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

MAX_IN_FLIGHT = 64
"""The cap `shop traffic` puts on operations under way (`run`'s default is none)."""
SETUP_CONCURRENCY = 8
"""Accounts opened at once by `set_up`."""

SKUS = [f"SKU-{n:03d}" for n in range(1, 11)]
LIMITED_SKU = "SKU-LTD"
LIMITED_UNITS = 2

ORDER_SHARE = 0.6
DEPOSIT_SHARE = 0.2
"""Of the operations; the rest are withdrawals."""
CANCEL_SHARE = 0.1
"""Of the ordinary orders accepted: cancelled by the customer right after."""
OVER_BUDGET_SHARE = 0.03
SHORT_SHARE = 0.03
"""Of the orders: beyond the customer's means, beyond the limited edition's stock."""

PRICES = (2, 60)
OPENING = (50, 500)
PAYDAY = (400, 800)
DEPOSIT = (5, 150)
WITHDRAWAL = (5, 150)
"""Whole currency units, low to high; amounts are drawn to the cent."""
LOW_BALANCE = Decimal("150.00")
FIRST_STOCK = (50, 200)
RESTOCK = (50, 150)
LOW_STOCK = 20
MAX_QUANTITY = 10_000
"""A line's quantity limit (models/orders.py)."""
SETTLE_SECONDS = 60.0
"""After this, what a cancellation gives back (refund, released stock) is counted back in."""
MAX_REFILLS = 2
"""Top-ups (restocks) an operation waits for before it gives up on what it meant to do."""

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

N = TypeVar("N", int, Decimal)


class Commands(Protocol):
    """What the traffic needs of its client: app/http_client.py's ApiClient.command
    (an Idempotency-Key, retried on 503/504); the final status, None when unanswered."""

    async def command(self, path: str, body: dict[str, Any]) -> int | None: ...


def account_ids(count: int) -> list[str]:
    return [f"cust-{n:04d}" for n in range(1, count + 1)]


def random_amount(rng: random.Random, low: int, high: int) -> Decimal:
    """Between low and high (whole units), to the cent."""
    return Decimal(rng.randint(low * 100, high * 100)).scaleb(-2)


def money(amount: Decimal) -> str:
    """How money is sent: a decimal string with two places."""
    return str(amount.quantize(CENT))


def accepted(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def refused(status: int | None) -> bool:
    """The shop did nothing: a 4xx, or a 503 after every retry (nothing was taken in)."""
    return status is not None and (400 <= status < 500 or status == 503)


@dataclass
class Estimate(Generic[N]):
    """A lower bound of one balance (Decimal) or one SKU's stock (int)."""

    level: N
    returning: list[tuple[float, N]] = field(default_factory=list)
    """(when, how much): given back by a cancellation, counted in from `when` on."""
    refill: asyncio.Task[None] | None = None
    """The payday (restock) under way, if any: one at a time."""

    def settle(self, now: float) -> None:
        due = [amount for when, amount in self.returning if when <= now]
        if due:
            self.returning = [(w, a) for w, a in self.returning if w > now]
            self.level = sum(due, self.level)

    def expected(self) -> N:
        """The level once everything on its way back is in."""
        return sum((amount for _, amount in self.returning), self.level)

    def take(self, amount: N) -> bool:
        """Count `amount` out, unless that would take the level under zero."""
        if self.level - amount < 0:
            return False
        self.level -= amount
        return True

    def give_back(self, amount: N) -> None:
        self.level += amount

    def give_back_later(self, amount: N, when: float) -> None:
        self.returning.append((when, amount))


@dataclass
class ShopState:
    """The traffic's picture of the shop: the price list and its estimates."""

    prices: dict[str, Decimal]
    """Per SKU (the limited edition too)."""
    balances: dict[str, Estimate[Decimal]]
    stock: dict[str, Estimate[int]]
    counts: Counter[str] = field(default_factory=Counter)
    clock: Callable[[], float] = time.monotonic
    refills: set[asyncio.Task[None]] = field(default_factory=set)
    """Paydays and restocks under way (`run` waits for them at the end)."""

    @property
    def customers(self) -> list[str]:
        return list(self.balances)

    def start_refill(self, estimate: Estimate[Any], make: Callable[[], Awaitable[None]]) -> None:
        """Start `make()` for `estimate` unless one is under way already."""
        if estimate.refill is None or estimate.refill.done():

            async def refill() -> None:
                await make()

            task = asyncio.create_task(refill())
            estimate.refill = task
            self.refills.add(task)
            task.add_done_callback(self.refills.discard)

    async def take(
        self, estimate: Estimate[N], amount: N, low: N, make: Callable[[], Awaitable[None]]
    ) -> bool:
        """Count `amount` out of `estimate`, waiting for up to MAX_REFILLS refills when
        it is short; a refill starts (in the background) once the level is under `low`.
        False when it is still short: nothing is counted out."""
        for attempt in range(MAX_REFILLS + 1):
            estimate.settle(self.clock())
            if estimate.take(amount):
                if estimate.level < low:
                    self.start_refill(estimate, make)
                return True
            if attempt < MAX_REFILLS:
                self.start_refill(estimate, make)
                assert estimate.refill is not None
                await asyncio.shield(estimate.refill)
        return False


# --- the commands ------------------------------------------------------------------


async def deposit(
    client: Commands, state: ShopState, customer: str, amount: Decimal, reference: str
) -> int | None:
    status = await client.command(
        f"/accounts/{customer}/deposits", {"amount": money(amount), "reference": reference}
    )
    if status == 201:
        state.balances[customer].give_back(amount)
    return status


async def top_up(client: Commands, state: ShopState, customer: str, rng: random.Random) -> None:
    """The customer pays in a little."""
    if await deposit(client, state, customer, random_amount(rng, *DEPOSIT), "top-up") == 201:
        state.counts["deposits"] += 1


async def payday(client: Commands, state: ShopState, customer: str, rng: random.Random) -> None:
    if await deposit(client, state, customer, random_amount(rng, *PAYDAY), "payday") == 201:
        state.counts["paydays"] += 1


async def restock(client: Commands, state: ShopState, sku: str, quantity: int) -> None:
    status = await client.command(f"/products/{sku}/stock", {"quantity": quantity})
    if status == 201:
        state.stock[sku].give_back(quantity)
        state.counts["restocks"] += 1


async def take_money(
    client: Commands, state: ShopState, customer: str, amount: Decimal, rng: random.Random
) -> bool:
    async def refill() -> None:
        await payday(client, state, customer, rng)

    return await state.take(state.balances[customer], amount, LOW_BALANCE, refill)


async def take_stock(
    client: Commands, state: ShopState, lines: dict[str, int], rng: random.Random
) -> bool:
    """Count every line's units out (restocking first where needed), or none."""
    taken: list[tuple[str, int]] = []
    for sku, quantity in lines.items():

        async def refill(sku: str = sku) -> None:
            await restock(client, state, sku, rng.randint(*RESTOCK))

        if not await state.take(state.stock[sku], quantity, LOW_STOCK, refill):
            for sku_taken, quantity_taken in taken:
                state.stock[sku_taken].give_back(quantity_taken)
            return False
        taken.append((sku, quantity))
    return True


def total_of(state: ShopState, lines: dict[str, int]) -> Decimal:
    return sum((state.prices[sku] * quantity for sku, quantity in lines.items()), ZERO)


async def place(
    client: Commands, state: ShopState, customer: str, lines: dict[str, int], rng: random.Random
) -> tuple[str, int | None]:
    """POST the order at the price list's prices: its id and the final status."""
    order_id = f"ord-{rng.getrandbits(48):012x}"
    body = {
        "order_id": order_id,
        "customer_id": customer,
        "lines": [
            {"sku": sku, "quantity": quantity, "unit_price": money(state.prices[sku])}
            for sku, quantity in lines.items()
        ],
    }
    return order_id, await client.command("/orders", body)


async def basket(client: Commands, state: ShopState, customer: str, rng: random.Random) -> None:
    """An ordinary order, within the customer's means and the shelves'."""
    lines = {sku: rng.randint(1, 3) for sku in rng.sample(SKUS, rng.randint(1, 3))}
    total = total_of(state, lines)
    if not await take_stock(client, state, lines, rng):
        state.counts["skipped"] += 1
        return
    if not await take_money(client, state, customer, total, rng):
        for sku, quantity in lines.items():
            state.stock[sku].give_back(quantity)
        state.counts["skipped"] += 1
        return
    order_id, status = await place(client, state, customer, lines, rng)
    if refused(status):
        state.balances[customer].give_back(total)
        for sku, quantity in lines.items():
            state.stock[sku].give_back(quantity)
        return
    if not accepted(status):
        return  # unknown: it stays counted out
    state.counts["orders"] += 1
    if rng.random() < CANCEL_SHARE:
        cancel = {"reason": "customer_request"}
        if accepted(await client.command(f"/orders/{order_id}/cancel", cancel)):
            state.counts["cancelled"] += 1
            when = state.clock() + SETTLE_SECONDS
            state.balances[customer].give_back_later(total, when)
            for sku, quantity in lines.items():
                state.stock[sku].give_back_later(quantity, when)


async def over_budget(
    client: Commands, state: ShopState, customer: str, rng: random.Random
) -> None:
    """A basket the customer cannot pay for: declined, so nothing is counted out."""
    estimate = state.balances[customer]
    estimate.settle(state.clock())
    most = 2 * max(estimate.expected(), ZERO) + PAYDAY[1] + DEPOSIT[1]
    sku = rng.choice(SKUS)
    quantity = min(int(most / state.prices[sku]) + rng.randint(1, 3), MAX_QUANTITY)
    _, status = await place(client, state, customer, {sku: quantity}, rng)
    if accepted(status):
        state.counts["orders"] += 1
        state.counts["over_budget"] += 1


async def short(client: Commands, state: ShopState, customer: str, rng: random.Random) -> None:
    """More of the limited edition than there is: paid, then cancelled out_of_stock and
    refunded (the refund counted back in SETTLE_SECONDS later)."""
    lines = {LIMITED_SKU: LIMITED_UNITS + rng.randint(1, 2)}
    total = total_of(state, lines)
    if not await take_money(client, state, customer, total, rng):
        state.counts["skipped"] += 1
        return
    _, status = await place(client, state, customer, lines, rng)
    if refused(status):
        state.balances[customer].give_back(total)
    elif accepted(status):
        state.counts["orders"] += 1
        state.counts["short"] += 1
        state.balances[customer].give_back_later(total, state.clock() + SETTLE_SECONDS)


async def order(client: Commands, state: ShopState, customer: str, rng: random.Random) -> None:
    roll = rng.random()
    if roll < OVER_BUDGET_SHARE:
        await over_budget(client, state, customer, rng)
    elif roll < OVER_BUDGET_SHARE + SHORT_SHARE:
        await short(client, state, customer, rng)
    else:
        await basket(client, state, customer, rng)


async def withdraw(client: Commands, state: ShopState, customer: str, rng: random.Random) -> None:
    """Takes out what the customer can spare; with too little, pays in instead."""
    estimate = state.balances[customer]
    amount = random_amount(rng, *WITHDRAWAL)
    estimate.settle(state.clock())
    if not estimate.take(amount):
        await top_up(client, state, customer, rng)
        return
    if estimate.level < LOW_BALANCE:
        state.start_refill(estimate, lambda: payday(client, state, customer, rng))
    body = {"amount": money(amount), "reference": "cash"}
    status = await client.command(f"/accounts/{customer}/withdrawals", body)
    if refused(status):
        estimate.give_back(amount)
    elif accepted(status):
        state.counts["withdrawals"] += 1


async def step(client: Commands, state: ShopState, rng: random.Random) -> None:
    """One operation, for a customer picked at random."""
    customer = rng.choice(state.customers)
    roll = rng.random()
    if roll < ORDER_SHARE:
        await order(client, state, customer, rng)
    elif roll < ORDER_SHARE + DEPOSIT_SHARE:
        await top_up(client, state, customer, rng)
    else:
        await withdraw(client, state, customer, rng)


# --- set-up and the run --------------------------------------------------------------


async def set_up(
    client: Commands,
    accounts: Sequence[str],
    rng: random.Random,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> ShopState:
    """Stock the shelves and open and fund the accounts; safe to repeat on the same shop
    (an account already open answers 409 and is funded all the same; the limited
    edition is stocked only the first time). The estimates start from what this set-up
    put in, a lower bound when the shop already had some."""
    state = ShopState(
        prices={sku: random_amount(rng, *PRICES) for sku in [*SKUS, LIMITED_SKU]},
        balances={customer: Estimate(ZERO) for customer in accounts},
        stock={sku: Estimate(0) for sku in SKUS},
        clock=clock,
    )
    for sku in SKUS:
        await restock(client, state, sku, rng.randint(*FIRST_STOCK))
    limited = {"quantity": LIMITED_UNITS, "expected_version": 0}
    await client.command(f"/products/{LIMITED_SKU}/stock", limited)
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def open_account(customer: str) -> None:
        async with gate:
            status = await client.command("/accounts", {"account_id": customer, "owner": customer})
            if status in (201, 409):
                await deposit(client, state, customer, random_amount(rng, *OPENING), "opening")

    await asyncio.gather(*(open_account(customer) for customer in accounts))
    state.counts.clear()  # the set-up's restocks are not the run's
    return state


class Pacer:
    """Spaces starts evenly at `rate` per second."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_slot = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


async def paced(
    tasks: set[asyncio.Task[None]],
    pacer: Pacer,
    stop: asyncio.Event,
    coro: Any,
    max_in_flight: int | None = MAX_IN_FLIGHT,
) -> bool:
    """Start `coro` at the next slot unless stopping; False when stopped."""
    while max_in_flight is not None and len(tasks) >= max_in_flight and not stop.is_set():
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    await pacer.wait()
    if stop.is_set():
        coro.close()
        return False
    task = asyncio.create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return True


async def run(
    client: Commands,
    state: ShopState,
    rate: float,
    stop: asyncio.Event,
    rng: random.Random,
    *,
    max_in_flight: int | None = None,
    drain_timeout: float | None = None,
) -> None:
    """Start one `step` every 1/rate seconds, open loop, until `stop` is set; then wait
    for the operations, paydays and restocks under way (at most `drain_timeout` seconds,
    None: until they are over). `max_in_flight` caps the operations under way (None: no
    cap, so the rate holds whatever the answers take)."""
    pacer = Pacer(rate)
    tasks: set[asyncio.Task[None]] = set()
    while await paced(tasks, pacer, stop, step(client, state, rng), max_in_flight):
        pass
    while tasks or state.refills:  # an operation under way may start a refill
        await asyncio.wait(tasks | state.refills, timeout=drain_timeout)
        if drain_timeout is not None:
            break
