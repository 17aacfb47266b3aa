"""`shop`: command-line tools around a running shop.

    shop traffic --url http://127.0.0.1:6066 --rate 5 --accounts 20 [--duration 60]
    shop load ...                 (orders at a target rate, app/load.py)
    shop dead-letters list|retry  (app/dead_letters_cli.py)
    shop rebuild accounts|analytics|orders|stock|timeline  (app/rebuild_cli.py)

Each subcommand is one `add_<name>_parser` function plus its runner, so a new
one slots in without touching the others; `build_parser()` is the whole tree
(tests/unit/test_cli_help.py checks every parser's help against it).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.dead_letters_cli import add_dead_letters_parser
from app.http_client import MAX_ATTEMPTS, ApiClient, Tally
from app.load import add_load_parser, positive_float, positive_int, token_or_environment
from app.rebuild_cli import add_rebuild_parser

PROGRESS_EVERY = 5.0
MAX_IN_FLIGHT = 64


# --- shared plumbing -----------------------------------------------------------


@dataclass
class Stats(Tally):
    """What was sent and how the shop answered (the client's tally), and since when."""

    started: float = field(default_factory=time.monotonic)

    @property
    def accepted(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def rejected(self) -> dict[int, int]:
        return {s: n for s, n in sorted(self.statuses.items()) if 400 <= s < 500}

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rejected = self.rejected()
        by_status = " ".join(f"{s}:{n}" for s, n in rejected.items())
        others = sum(self.statuses.values()) - self.accepted - sum(rejected.values())
        parts = [
            f"{elapsed:5.0f}s",
            f"sent={self.sent}",
            f"accepted={self.accepted}",
            f"rejected={sum(rejected.values())}" + (f" ({by_status})" if by_status else ""),
            f"retries={self.retries}",
        ]
        if others:
            parts.append(f"other={others}")
        if self.errors:
            parts.append(f"errors={sum(self.errors.values())}")
        parts.append(f"rate={self.sent / elapsed:.1f}/s")
        return " ".join(parts)


class Pacer:
    """Spaces request starts evenly at `rate` per second."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_slot = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def run_until_signalled(
    main: Callable[[asyncio.Event], Any],
) -> None:
    """Run `main(stop)` where `stop` is set on SIGINT/SIGTERM."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


# --- shop traffic ------------------------------------------------------------------


def account_ids(count: int) -> list[str]:
    return [f"cust-{n:04d}" for n in range(1, count + 1)]


def random_amount(rng: random.Random, low: int, high: int) -> str:
    """A decimal string with two places, between low and high (whole units)."""
    cents = rng.randint(low * 100, high * 100)
    return str(Decimal(cents).scaleb(-2))


async def open_account(client: ApiClient, account_id: str, rng: random.Random) -> None:
    """Open (409 = already there, fine) and fund one account."""
    status = await client.command("/accounts", {"account_id": account_id, "owner": account_id})
    if status in (201, 409):
        amount = random_amount(rng, 50, 500)
        await client.command(f"/accounts/{account_id}/deposits", {"amount": amount})


SKUS = [f"SKU-{n:03d}" for n in range(1, 11)]


async def stock_products(client: ApiClient, rng: random.Random) -> None:
    for sku in SKUS:
        await client.command(f"/products/{sku}/stock", {"quantity": rng.randint(20, 200)})


async def place_order(client: ApiClient, account_id: str, rng: random.Random) -> None:
    """An order of 1-3 lines; some are declined (funds), some short (stock), some cancelled."""
    lines = [
        {"sku": sku, "quantity": rng.randint(1, 3), "unit_price": random_amount(rng, 2, 60)}
        for sku in rng.sample(SKUS, rng.randint(1, 3))
    ]
    order_id = f"ord-{rng.getrandbits(48):012x}"
    status = await client.command(
        "/orders", {"order_id": order_id, "customer_id": account_id, "lines": lines}
    )
    if status == 202 and rng.random() < 0.1:
        await client.command(f"/orders/{order_id}/cancel", {"reason": "customer_request"})


async def random_operation(client: ApiClient, account_id: str, rng: random.Random) -> None:
    """Mostly orders; else a deposit or a withdrawal (some refused for insufficient funds)."""
    if rng.random() < 0.6:
        await place_order(client, account_id, rng)
        return
    if rng.random() < 0.55:
        path, amount = "deposits", random_amount(rng, 1, 200)
    else:
        path, amount = "withdrawals", random_amount(rng, 1, 250)
    await client.command(
        f"/accounts/{account_id}/{path}", {"amount": amount, "reference": "traffic"}
    )


async def report_progress(stats: Stats, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), PROGRESS_EVERY)
        except TimeoutError:
            print(f"traffic: {stats.line()}", flush=True)


async def paced(
    tasks: set[asyncio.Task[None]], pacer: Pacer, stop: asyncio.Event, coro: Any
) -> bool:
    """Start `coro` at the next slot unless stopping; False when stopped."""
    while len(tasks) >= MAX_IN_FLIGHT and not stop.is_set():
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    await pacer.wait()
    if stop.is_set():
        coro.close()
        return False
    task = asyncio.create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return True


async def traffic(args: argparse.Namespace, stop: asyncio.Event) -> Stats:
    rng = random.Random(args.seed)
    stats = Stats()
    pacer = Pacer(args.rate)
    ids = account_ids(args.accounts)
    tasks: set[asyncio.Task[None]] = set()
    if args.duration is not None:
        asyncio.get_running_loop().call_later(args.duration, stop.set)
    progress = asyncio.create_task(report_progress(stats, stop))
    print(
        f"traffic: {len(ids)} accounts, {args.rate}/s against {args.url}"
        + (f" for {args.duration}s" if args.duration is not None else " (Ctrl-C stops)"),
        flush=True,
    )
    token = token_or_environment(args.token)
    async with ApiClient(args.url, token=token, timeout=args.timeout, tally=stats) as client:
        await stock_products(client, rng)
        for account_id in ids:
            if not await paced(tasks, pacer, stop, open_account(client, account_id, rng)):
                break
        if tasks:
            await asyncio.wait(set(tasks))
        while not stop.is_set():
            if not await paced(tasks, pacer, stop, random_operation(client, rng.choice(ids), rng)):
                break
        if tasks:
            await asyncio.wait(set(tasks), timeout=args.timeout)
    stop.set()
    await progress
    return stats


def print_summary(stats: Stats) -> None:
    rejected = stats.rejected()
    print(f"traffic: done {stats.line()}", flush=True)
    print(f"  sent {stats.sent} commands ({stats.retries} retries)")
    print(f"  accepted (2xx): {stats.accepted}")
    print(f"  rejected (4xx): {sum(rejected.values())}")
    for status, count in rejected.items():
        print(f"    {status}: {count}")
    others = {s: n for s, n in stats.statuses.items() if not 200 <= s < 500}
    for status, count in sorted(others.items()):
        print(f"  status {status} (after retries): {count}")
    for name, count in stats.errors.most_common():
        print(f"  connection errors ({name}): {count}")


def run_traffic(args: argparse.Namespace) -> int:
    result: list[Stats] = []

    async def main(stop: asyncio.Event) -> None:
        result.append(await traffic(args, stop))

    run_until_signalled(main)
    print_summary(result[0])
    return 0


TRAFFIC_DESCRIPTION = f"""\
Sample traffic for a demo (`make start` runs it). First it stocks {SKUS[0]} to
{SKUS[-1]} and opens and funds --accounts accounts (cust-0001, ...); then, until
--duration runs out or Ctrl-C / SIGTERM, it starts --rate operations per second,
each one or two commands: mostly an order of 1-3 lines (one in ten accepted
orders is then cancelled), else a deposit or a withdrawal (some refused for
insufficient funds).

Talks to one worker's HTTP API (--url). Every command carries an
Idempotency-Key and is retried with the same key on 503/504 or no answer (up
to {MAX_ATTEMPTS} attempts). $API_TOKEN (or --token) is sent as a bearer token.

Prints a progress line every {PROGRESS_EVERY:g} s and, once stopped, a summary (commands
sent, accepted, rejected by status, retries, connection errors) on stdout.
Exit status: 0 once stopped, whatever the shop answered.
"""


def add_traffic_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "traffic",
        help="sample traffic until stopped: accounts, deposits, withdrawals, orders, cancels",
        description=TRAFFIC_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        default="http://127.0.0.1:6066",
        help="the worker's base URL (default: %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=5.0,
        metavar="PER_SECOND",
        help="operations started per second (default: %(default)s)",
    )
    parser.add_argument(
        "--accounts",
        type=positive_int,
        default=20,
        metavar="N",
        help="accounts opened and funded, each operation on one of them (default: %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="seconds to run (omitted: until Ctrl-C or SIGTERM)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=15.0,
        metavar="SECONDS",
        help="seconds each HTTP request may take, and the most the end waits for operations "
        "under way (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed: the same seed repeats the same operations, order ids included, "
        "so its orders are refused as duplicates (omitted: different ones each time)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token sent with every command (omitted: $API_TOKEN, if set)",
    )
    parser.set_defaults(run=run_traffic)


# --- entry point --------------------------------------------------------------------


DESCRIPTION = """\
Command-line tools around a running shop. traffic, load and dead-letters talk to
a worker's HTTP API; rebuild talks to Kafka directly.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shop",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(
        dest="command",
        required=True,
        title="commands",
        metavar="COMMAND",
        help="`shop COMMAND --help` tells what it does, what it prints and its exit status",
    )
    add_traffic_parser(subparsers)
    add_load_parser(subparsers)
    add_dead_letters_parser(subparsers)
    add_rebuild_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
