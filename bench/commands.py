"""The write side: command latency at fixed arrival rates, saturation, and overload.

    python -m bench.commands [--rates 50,200] [--seconds 20] [--accounts 200]
                             [--clients 64] [--workers 1] [--profile FILE]

In one run, on one isolated copy of the system (real `faust worker`s; every
request goes to the first; with `--workers 2` the commands of the partitions
the other owns go through the command topic and come back on the reply topic):

1. the peer: a plain aiokafka producer (acks=all, the same broker) appending
   one record per arrival at each fixed rate (open loop: arrivals do not wait
   for answers), then as fast as `--clients` concurrent appends go. This is
   the floor: a command is at least one such append;
2. open loop: POST /accounts/{id}/deposits at each fixed rate for `--seconds`:
   p50/p99/max latency and the statuses;
3. saturation: `--clients` clients in a closed loop: commands/s answered 201;
4. overload: open loop at twice the saturation rate: goodput (201s per second)
   against saturation, how many were refused at once (503 with Retry-After),
   and the longest wait of any answer (none may reach COMMAND_TIMEOUT);
5. the check: every 201 is one `MoneyDeposited` in `accounts.events` (read
   straight from Kafka), nothing lost, nothing doubled.

Also printed: the worker's CPU per command in the saturation phase, the mean
group-commit batch (from /metrics), and with `--profile` where the worker's
time went (py-spy). One run on a shared machine: compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import platform
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.accounts import (
    BROKER_WAIT,
    _interrupt,
    cpu_seconds,
    line,
    pct,
    start_profile,
    stop_profile,
    summarize_profile,
    wait_for_broker,
)
from bench.local_shop import System, Worker, bootstrap_servers, read_values
from models.envelope import EventEnvelope

AMOUNT = "1.00"
PARTITIONS = 8


@dataclass
class Run:
    """What one phase's requests got."""

    label: str
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    """Of the answers that count (201 for commands, acked for appends)."""
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    slowest_ms: float = 0.0
    """The longest wait of any answer, whatever it said."""

    @property
    def good_per_second(self) -> float:
        return len(self.latencies_ms) / self.elapsed if self.elapsed else 0.0

    def report(self, note: str = "") -> None:
        if not self.latencies_ms:
            line(self.label, "no answer counted", dict(self.statuses).__repr__())
            return
        lat = self.latencies_ms
        line(
            self.label,
            f"p50 {pct(lat, 50):6.1f} ms  p99 {pct(lat, 99):6.1f} ms  max {max(lat):7.1f} ms",
            f"{self.good_per_second:,.0f}/s good  {dict(self.statuses)} {note}",
        )


Send = Callable[[int], Awaitable[str]]
"""Sends request number i; returns its outcome ("201", "503", "acked", an error name)."""


async def open_loop(label: str, rate: float, seconds: float, send: Send, good: str) -> Run:
    """Request i starts at i / rate seconds, whether or not earlier ones were answered."""
    run = Run(label)
    total = int(rate * seconds)
    started = time.perf_counter()

    async def one(i: int) -> None:
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.perf_counter()
        outcome = await send(i)
        waited = (time.perf_counter() - sent) * 1000
        run.statuses[outcome] += 1
        run.slowest_ms = max(run.slowest_ms, waited)
        if outcome == good:
            run.latencies_ms.append(waited)

    await asyncio.gather(*(one(i) for i in range(total)))
    run.elapsed = time.perf_counter() - started
    return run


async def closed_loop(label: str, clients: int, seconds: float, send: Send, good: str) -> Run:
    """`clients` loops, each sending its next request as soon as the last is answered."""
    run = Run(label)
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            outcome = await send(next(counter))
            waited = (time.perf_counter() - sent) * 1000
            run.statuses[outcome] += 1
            run.slowest_ms = max(run.slowest_ms, waited)
            if outcome == good:
                run.latencies_ms.append(waited)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    run.elapsed = time.perf_counter() - started
    return run


def deposits(session: aiohttp.ClientSession, url: str, ids: list[str]) -> Send:
    async def send(i: int) -> str:
        try:
            async with session.post(
                f"{url}/accounts/{ids[i % len(ids)]}/deposits",
                json={"amount": AMOUNT, "reference": "bench"},
            ) as response:
                await response.read()
                return str(response.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            return type(error).__name__

    return send


def appends(producer: AIOKafkaProducer, topic: str) -> Send:
    value = b"x" * 420  # about the size of a MoneyDeposited event

    async def send(i: int) -> str:
        await producer.send_and_wait(topic, value, key=f"acc-{i % 200}".encode())
        return "acked"

    return send


async def peer(bootstrap: str, topic: str, rates: list[float], args: argparse.Namespace) -> Run:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # like the event topics: 8 partitions
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        for rate in rates:
            run = await open_loop(
                f"raw append {rate:.0f}/s", rate, args.seconds, appends(producer, topic), "acked"
            )
            run.report()
        saturated = await closed_loop(
            f"raw append, {args.clients} in flight",
            args.clients,
            args.seconds,
            appends(producer, topic),
            "acked",
        )
        saturated.report()
        return saturated
    finally:
        await producer.stop()


async def metric_sum(session: aiohttp.ClientSession, url: str, name: str) -> tuple[float, float]:
    """(sum, count) of a Prometheus histogram over its labels, from /metrics."""
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    total = count = 0.0
    for row in text.splitlines():
        if row.startswith(f"{name}_sum"):
            total += float(row.rsplit(" ", 1)[1])
        elif row.startswith(f"{name}_count"):
            count += float(row.rsplit(" ", 1)[1])
    return total, count


async def main_async(args: argparse.Namespace, system: System, worker: Worker) -> None:
    rates = [float(r) for r in args.rates.split(",") if r]
    ids = [f"bench-{system.id[-6:]}-{n}" for n in range(args.accounts)]
    connector = aiohttp.TCPConnector(limit=1024)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await open_accounts(session, worker.url, ids)

        print("\n== the peer: raw aiokafka appends (acks=all) to the same broker")
        raw = await peer(system.bootstrap, f"{system.id}.bench-raw", rates, args)

        print("\n== commands: POST deposit -> 201, open loop at fixed rates")
        send = deposits(session, worker.url, ids)
        accepted = 0
        for rate in rates:
            run = await open_loop(f"deposit {rate:.0f}/s", rate, args.seconds, send, "201")
            run.report()
            accepted += run.statuses["201"]

        print(f"\n== saturation: {args.clients} clients, closed loop")
        pid = worker.process.pid if worker.process else 0
        spy = start_profile(pid, args.profile) if args.profile else None
        cpu_before, mine_before = cpu_seconds(pid), time.process_time()
        batches_before = await metric_sum(session, worker.url, "shop_command_batch_size")
        saturated = await closed_loop(
            f"{args.clients} clients", args.clients, args.seconds, send, "201"
        )
        cpu, mine = cpu_seconds(pid) - cpu_before, time.process_time() - mine_before
        batches_after = await metric_sum(session, worker.url, "shop_command_batch_size")
        stop_profile(spy)
        saturated.report()
        accepted += saturated.statuses["201"]
        saturation = saturated.good_per_second
        commands_in = batches_after[0] - batches_before[0]
        batches = batches_after[1] - batches_before[1]
        per_command = cpu / max(1, saturated.statuses["201"]) * 1e6
        line("worker CPU", f"{per_command:,.0f} us per command", f"{cpu:.1f}s over the phase")
        line("this client's CPU", f"{mine:.1f}s over the phase", "(the same 2 cores)")
        if batches:
            line("group commit", f"{commands_in / batches:.1f} commands per batch", "mean")

        overload_rate = 2 * saturation
        print(f"\n== overload: open loop at twice saturation ({overload_rate:,.0f}/s)")
        cpu_before, mine_before = cpu_seconds(pid), time.process_time()
        overload = await open_loop(
            f"deposit {overload_rate:.0f}/s", overload_rate, args.seconds, send, "201"
        )
        cpu, mine = cpu_seconds(pid) - cpu_before, time.process_time() - mine_before
        overload.report()
        accepted += overload.statuses["201"]
        refused = overload.statuses["503"]
        timed_out = overload.statuses["504"]
        goodput = overload.good_per_second / saturation if saturation else 0.0
        line("goodput", f"{goodput:.0%} of saturation", f"{refused} refused at once (503)")
        line("longest answer", f"{overload.slowest_ms:,.0f} ms", f"{timed_out} timed out (504)")
        line("CPU over the phase", f"worker {cpu:.1f}s", f"this client {mine:.1f}s")

    print("\n== ratios (one run)")
    line("saturation", f"{saturation / raw.good_per_second:.2f} x raw appends", "commands/appends")
    print("\n== the check: answers against the log")
    deposited = await count_deposits(system)
    line("201 answers", f"{accepted:,}", f"MoneyDeposited in the log: {deposited:,}")
    if deposited != accepted:
        raise SystemExit(f"the log holds {deposited} deposits, {accepted} were answered 201")
    if args.profile:
        summarize_profile(args.profile, phase="the saturation phase")


async def open_accounts(session: aiohttp.ClientSession, url: str, ids: list[str]) -> None:
    gate = asyncio.Semaphore(16)

    async def one(account: str) -> None:
        async with (
            gate,
            session.post(f"{url}/accounts", json={"account_id": account, "owner": "b"}) as response,
        ):
            if response.status != 201:
                raise RuntimeError(f"open {account}: {response.status} {await response.text()}")

    await asyncio.gather(*(one(account) for account in ids))


async def count_deposits(system: System) -> int:
    values = await read_values(system.bootstrap, system.topic("accounts.events"), PARTITIONS)
    return sum(
        1 for raw in values if EventEnvelope.model_validate_json(raw).event_type == "MoneyDeposited"
    )


def machine_facts(args: argparse.Namespace) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load avg {load}, python {platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200", help="fixed arrival rates, per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--clients", type=int, default=64, help="closed-loop clients")
    parser.add_argument(
        "--workers", type=int, default=1, help="workers; requests all go to the first"
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the saturation phase")
    args = parser.parse_args()
    machine_facts(args)
    print(
        f"settings: rates {args.rates}/s, {args.seconds:.0f} s a phase, {args.accounts} "
        f"accounts, {args.clients} closed-loop clients; {args.workers} worker(s), 8 partitions"
    )
    signal.signal(signal.SIGTERM, _interrupt)
    wait_for_broker(bootstrap_servers(), BROKER_WAIT)
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as workdir:
        system = System(Path(workdir))
        print(f"namespace: {system.id}, broker {system.bootstrap}")
        try:
            worker = system.worker().wait_ready(timeout=180)
            others = [system.worker() for _ in range(args.workers - 1)]
            for other in others:  # the others own part of the partitions: their commands
                other.wait_ready(timeout=180)  # go through the command and reply topics
            worker.wait_ready(timeout=180)
            asyncio.run(main_async(args, system, worker))
        finally:
            system.stop()  # its workers, then its topics


if __name__ == "__main__":
    main()
