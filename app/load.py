"""`shop load`: a realistic order load against running workers, for the dashboard and tests.

    shop load --orders 10000 --rate 200 --customers 500 --skus 50 [--url URL[,URL...]]

First it opens and funds the customers' accounts (about one in ten gets too
little money, so some payments are declined) and stocks the SKUs (a few are
scarce, so some orders run out of stock); then it places orders at the given
rate (1-3 lines, popular SKUs more often), and cancels about one in twenty
right after placing it. Each command carries an Idempotency-Key and is retried
on 503/504 or a lost connection with the same key, so nothing counts twice.
A progress bar on stderr; a summary at the end: sent, accepted, rejected, rate.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.http_client import MAX_ATTEMPTS, ApiClient
from app.settings import CommandLineSettings

SETUP_CONCURRENCY = 32
CANCEL_SHARE = 0.05
POOR_SHARE = 0.1
SCARCE_SHARE = 0.1


@dataclass
class LoadStats:
    started: float = field(default_factory=time.monotonic)
    planned: int = 0
    sent: int = 0
    """Orders placed (one per order, however many retries it took)."""
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    """No answer, or a server error, after every retry."""
    retries: int = 0
    cancels_sent: int = 0
    cancels_accepted: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    order_ids: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "failed": self.failed,
            "retries": self.retries,
            "cancels_sent": self.cancels_sent,
            "cancels_accepted": self.cancels_accepted,
            "statuses": dict(sorted(self.statuses.items())),
            "elapsed_seconds": round(self.elapsed, 1),
            "rate_per_second": round(self.rate, 1),
        }


def price_list(skus: list[str], rng: random.Random) -> dict[str, str]:
    return {sku: str(Decimal(rng.randint(199, 9999)).scaleb(-2)) for sku in skus}


def popularity(skus: list[str]) -> list[float]:
    """Zipf-like weights: the first SKUs sell most, so the top-SKU table means something."""
    return [1.0 / (rank + 1) ** 0.8 for rank in range(len(skus))]


async def setup(
    shop: ApiClient, customers: list[str], skus: list[str], orders: int, rng: random.Random
) -> None:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def customer(account_id: str) -> None:
        async with gate:
            status = await shop.command(
                "/accounts", {"account_id": account_id, "owner": account_id}
            )
            if status in (201, 409):
                poor = rng.random() < POOR_SHARE
                amount = "20.00" if poor else "100000.00"
                await shop.command(f"/accounts/{account_id}/deposits", {"amount": amount})

    weights = popularity(skus)
    total_weight = sum(weights)

    async def stock(sku: str, weight: float) -> None:
        # about as much as the orders will want (2 per line on average); scarce ones much less
        expected = int(orders * 2 * 2 * weight / total_weight) + 5
        quantity = max(1, expected // 20) if rng.random() < SCARCE_SHARE else expected * 2
        async with gate:
            await shop.command(f"/products/{sku}/stock", {"quantity": quantity})

    await asyncio.gather(*(customer(c) for c in customers))
    await asyncio.gather(*(stock(s, w) for s, w in zip(skus, weights, strict=True)))


def order_body(
    order_id: str,
    customers: list[str],
    skus: list[str],
    weights: list[float],
    prices: dict[str, str],
    rng: random.Random,
) -> dict[str, Any]:
    count = rng.choice((1, 1, 2, 2, 3))
    chosen: list[str] = []
    while len(chosen) < min(count, len(skus)):
        sku = rng.choices(skus, weights)[0]
        if sku not in chosen:
            chosen.append(sku)
    return {
        "order_id": order_id,
        "customer_id": rng.choice(customers),
        "lines": [
            {"sku": sku, "quantity": rng.randint(1, 3), "unit_price": prices[sku]} for sku in chosen
        ],
    }


class Progress:
    """A progress bar on stderr (a line every few seconds when stderr is not a terminal)."""

    def __init__(self, stats: LoadStats, stream: Any = None) -> None:
        self.stats = stats
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last = 0.0

    def line(self) -> str:
        s = self.stats
        done = s.accepted + s.rejected + s.failed
        share = done / s.planned if s.planned else 1.0
        bar = "#" * int(share * 30)
        return (
            f"[{bar:<30}] {done}/{s.planned} {share:4.0%} {s.rate:6.1f}/s "
            f"accepted={s.accepted} rejected={s.rejected} failed={s.failed}"
        )

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        end = "\n" if final or not self.tty else "\r"
        print(self.line(), end=end, file=self.stream, flush=True)


async def run_load(
    urls: list[str],
    orders: int,
    rate: float,
    customers: int,
    skus: int,
    seed: int | None = None,
    token: str = "",
    max_in_flight: int = 64,
    prefix: str = "load",
    progress: bool = True,
    request_timeout: float = 30.0,
) -> LoadStats:
    rng = random.Random(seed)
    run = f"{rng.getrandbits(32):08x}"
    customer_ids = [f"{prefix}-c{n:05d}" for n in range(customers)]
    sku_ids = [f"{prefix.upper()}-SKU-{n:03d}" for n in range(skus)]
    prices = price_list(sku_ids, rng)
    weights = popularity(sku_ids)
    stats = LoadStats(planned=orders)
    bar = Progress(stats) if progress else None
    async with ApiClient(urls, token=token, timeout=request_timeout) as shop:
        await setup(shop, customer_ids, sku_ids, orders, rng)
        stats.started = time.monotonic()
        in_flight: set[asyncio.Task[None]] = set()

        async def one(n: int, body: dict[str, Any], cancel: bool) -> None:
            status = await shop.command("/orders", body)
            stats.statuses[status or 0] += 1
            if status is not None and 200 <= status < 300:
                stats.accepted += 1
                stats.order_ids.append(body["order_id"])
                if cancel:
                    stats.cancels_sent += 1
                    path = f"/orders/{body['order_id']}/cancel"
                    if await shop.command(path, {"reason": "customer_request"}) in (200, 201, 202):
                        stats.cancels_accepted += 1
            elif status is not None and 400 <= status < 500:
                stats.rejected += 1
            else:
                stats.failed += 1
            if bar:
                bar.show()

        interval = 1.0 / rate
        next_slot = time.monotonic()
        for n in range(orders):
            while len(in_flight) >= max_in_flight:
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            now = time.monotonic()
            if next_slot > now:
                await asyncio.sleep(next_slot - now)
            next_slot = max(next_slot + interval, time.monotonic() - 1.0)
            body = order_body(f"{prefix}-{run}-{n}", customer_ids, sku_ids, weights, prices, rng)
            task = asyncio.create_task(one(n, body, rng.random() < CANCEL_SHARE))
            stats.sent += 1
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(set(in_flight))
        stats.retries = shop.tally.retries
    if bar:
        bar.show(final=True)
    return stats


def print_summary(stats: LoadStats) -> None:
    s = stats.summary()
    print(
        f"load: sent {s['sent']} orders in {s['elapsed_seconds']} s "
        f"({s['rate_per_second']}/s): accepted {s['accepted']}, rejected {s['rejected']}, "
        f"failed {s['failed']}, retries {s['retries']}"
    )
    print(f"  cancellations requested {s['cancels_sent']}, accepted {s['cancels_accepted']}")
    print(f"  HTTP statuses {s['statuses']}  (0 = no answer)")
    print("  payments declined and out-of-stock orders show on the dashboard (/dashboard)")


def run(args: argparse.Namespace) -> int:
    stats = asyncio.run(
        run_load(
            args.url,
            args.orders,
            args.rate,
            args.customers,
            args.skus,
            seed=args.seed,
            token=token_or_environment(args.token),
            max_in_flight=args.max_in_flight,
        )
    )
    print_summary(stats)
    return 0 if stats.failed == 0 else 1


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # else argparse names this function in the message
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def url_list(text: str) -> list[str]:
    """Comma-separated base URLs; none at all would leave nothing to send to."""
    urls = [url.strip() for url in text.split(",") if url.strip()]
    if not urls:
        raise argparse.ArgumentTypeError("needs at least one URL")
    return urls


def token_or_environment(token: str | None) -> str:
    """The token given, else $API_TOKEN: read at run time so `--help` never prints it."""
    return token if token is not None else CommandLineSettings().api_token


DESCRIPTION = f"""\
A realistic order load, for the dashboard and tests. First it opens and funds
--customers accounts (load-c00000, ...; about {POOR_SHARE:.0%} get too little money, so
some payments are declined) and stocks --skus SKUs (LOAD-SKU-000, ...; about
{SCARCE_SHARE:.0%} are scarce, so some orders run out of stock); then it places --orders
orders at --rate orders per second (1-3 lines, popular SKUs more often) and
cancels about {CANCEL_SHARE:.0%} of the accepted ones right after placing them.

Talks to the HTTP API of one or more workers (--url; each request goes to the
next URL in turn). Every command carries an Idempotency-Key and is retried with
the same key on 503/504 or no answer (up to {MAX_ATTEMPTS} attempts), so nothing counts
twice. $API_TOKEN (or --token) is sent as a bearer token.

Prints a progress bar on stderr and a summary on stdout: orders sent, accepted,
rejected, failed, retries, cancellations, HTTP statuses, rate.
Exit status: 0 when every order was answered with a 2xx or 4xx; 1 when any
failed (no answer, or a 5xx, after every retry).
"""


def add_load_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "load",
        help="place a realistic mix of orders at a fixed rate (declines, out of stock, cancels)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        type=url_list,
        default="http://127.0.0.1:6066",
        metavar="URL[,URL...]",
        help="base URLs of the workers, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--orders",
        type=positive_int,
        default=10_000,
        metavar="N",
        help="orders to place (default: %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=200.0,
        metavar="PER_SECOND",
        help="orders placed per second, cancellations on top (default: %(default)s)",
    )
    parser.add_argument(
        "--customers",
        type=positive_int,
        default=500,
        metavar="N",
        help="accounts opened and funded, each order from one of them (default: %(default)s)",
    )
    parser.add_argument(
        "--skus",
        type=positive_int,
        default=50,
        metavar="N",
        help="SKUs stocked and ordered (default: %(default)s)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=positive_int,
        default=64,
        metavar="N",
        help="orders awaiting an answer at once; the rate drops when they are all busy "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed: the same seed repeats a run, order ids included, so its orders "
        "are refused as duplicates (omitted: a different run each time)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token sent with every command (omitted: $API_TOKEN, if set)",
    )
    parser.set_defaults(run=run)
