"""`shop traffic`: sample shop traffic for a demo (`make start` runs it), at a fixed
rate until stopped, with app/traffic.py's schedule; a progress line every few seconds
and a summary at the end."""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.http_client import MAX_ATTEMPTS, ApiClient, Tally
from app.load import positive_float, positive_int, token_or_environment
from app.traffic import (
    CANCEL_SHARE,
    DEPOSIT_SHARE,
    LIMITED_SKU,
    LIMITED_UNITS,
    MAX_IN_FLIGHT,
    ORDER_SHARE,
    OVER_BUDGET_SHARE,
    SHORT_SHARE,
    SKUS,
    account_ids,
    run,
    set_up,
)

PROGRESS_EVERY = 5.0


@dataclass
class Stats(Tally):
    """What was sent and how the shop answered (the client's tally), and since when."""

    started: float = field(default_factory=time.monotonic)
    operations: Counter[str] = field(default_factory=Counter)
    """What the traffic did, once it is over (app/traffic.py's ShopState.counts)."""

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


async def report_progress(stats: Stats, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), PROGRESS_EVERY)
        except TimeoutError:
            print(f"traffic: {stats.line()}", flush=True)


async def traffic(args: argparse.Namespace, stop: asyncio.Event) -> Stats:
    """`shop traffic`: app/traffic.py's set-up, then its run at --rate until stopped."""
    rng = random.Random(args.seed)
    stats = Stats()
    ids = account_ids(args.accounts)
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
        setup = asyncio.create_task(set_up(client, ids, rng))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({setup, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not setup.done():  # stopped during the set-up
            setup.cancel()
            await asyncio.wait({setup}, timeout=args.timeout)
        else:
            state = setup.result()
            await run(
                client,
                state,
                args.rate,
                stop,
                rng,
                max_in_flight=MAX_IN_FLIGHT,
                drain_timeout=args.timeout,
            )
            stats.operations.update(state.counts)
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
    done = stats.operations
    if done:
        print(
            f"  orders placed: {done['orders']} (beyond the customer's means on purpose: "
            f"{done['over_budget']}, beyond the limited stock on purpose: {done['short']}, "
            f"cancelled by the customer: {done['cancelled']})"
        )
        print(
            f"  deposits: {done['deposits']}, withdrawals: {done['withdrawals']}, "
            f"paydays: {done['paydays']}, restocks: {done['restocks']}"
        )


def run_traffic(args: argparse.Namespace) -> int:
    result: list[Stats] = []

    async def main(stop: asyncio.Event) -> None:
        result.append(await traffic(args, stop))

    run_until_signalled(main)
    print_summary(result[0])
    return 0


TRAFFIC_DESCRIPTION = f"""\
Sample shop traffic for a demo (`make start` runs it; app/traffic.py). First it
stocks {SKUS[0]} to {SKUS[-1]} and a limited edition, {LIMITED_SKU} ({LIMITED_UNITS} units, stocked
once), and opens and funds --accounts accounts (cust-0001, ...). Then, until
--duration runs out or Ctrl-C / SIGTERM, it starts --rate operations per second
on a fixed schedule: {ORDER_SHARE:.0%} orders of 1-3 lines at the shop's price list (one
in {1 / CANCEL_SHARE:.0f} then cancelled by the customer), {DEPOSIT_SHARE:.0%} deposits, the rest
withdrawals of what the customer can spare.

It keeps an estimate of every balance and stock level from what it sent and the
shop's answers, and pays an account a payday or restocks a SKU before it runs
dry, so ordinary orders are neither declined nor short. On purpose, {OVER_BUDGET_SHARE:.0%} of
the orders are beyond the customer's means (cancelled: payment_declined) and {SHORT_SHARE:.0%}
ask for more of the limited edition than it has (cancelled: out_of_stock).

Talks to one worker's HTTP API (--url). Every command carries an
Idempotency-Key and is retried with the same key on 503/504 or no answer (up
to {MAX_ATTEMPTS} attempts). $API_TOKEN (or --token) is sent as a bearer token.

Prints a progress line every {PROGRESS_EVERY:g} s and, once stopped, a summary (commands
sent, accepted, rejected by status, retries, connection errors; orders placed,
paydays, restocks) on stdout.
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
