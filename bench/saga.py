"""Orders through the whole saga at fixed arrival rates: throughput and POST -> final latency.

    python -m bench.saga [--rates 25,50,100] [--seconds 60] [--workers 2]
                         [--drain 60] [--profile FILE]

On one isolated copy of the system (real broker, real `faust worker`s), after
funding customers and stocking SKUs, each phase places orders at a fixed rate
(open loop: order i is sent at i / rate seconds, answered or not), spread over
the workers as a load balancer would. The bench reads `orders.events` straight
from Kafka and takes each order's final event (shipped or cancelled) at the time
its record was appended (its timestamp: the worker's clock is this machine's), so
following orders puts no load on the workers, and the follower fetches a few times
a second instead of at each record (a fetch per record was 116 requests a second at
100 orders/s: CPU taken from the workers on a machine they share). Per phase it
prints:

- POST /orders latency (p50/p99) and its statuses (202, 503 refused at once);
- POST -> final latency (p50/p99/max) of the orders accepted;
- completed orders/s: orders final over the time from the first send to the
  last final event; and orders not final `--drain` s after the last send;
- Kafka records appended per order (every topic of the namespace), and the
  workers' CPU per order; with `--profile`, where the first worker's time went
  in the `--profile-rate` phase (py-spy).

Numbers from one run on a shared machine: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.kafka_clients import FILL_BYTES
from bench.accounts import (
    BROKER_WAIT,
    _interrupt,
    app_topics,
    cpu_seconds,
    line,
    pct,
    start_profile,
    stop_profile,
    summarize_profile,
    wait_for_broker,
)
from bench.local_shop import System, Worker, bootstrap_servers

PARTITIONS = 8
FINAL = {"OrderShipped": "shipped", "OrderCancelled": "cancelled"}


@dataclass
class Phase:
    """What one rate's orders got."""

    rate: float
    sent: dict[str, float] = field(default_factory=dict)
    """Accepted order id -> when its POST was sent (wall clock, seconds: the records'
    timestamps are compared with it)."""
    post_ms: list[float] = field(default_factory=list)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    first_sent: float = 0.0
    last_sent: float = 0.0


FOLLOW_WAIT_MS = 250
"""How long the follower's fetches wait to fill."""


class Finals:
    """Follows `orders.events` from its end: when each order's final event was appended
    (wall clock, seconds)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.seen: dict[str, tuple[float, str]] = {}
        self.arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            fetch_min_bytes=FILL_BYTES,  # each fetch waits its whole wait: few requests
            fetch_max_wait_ms=FOLLOW_WAIT_MS,
        )
        await consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        self._task = asyncio.create_task(self._follow(consumer))

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=FOLLOW_WAIT_MS * 2)
                for records in batches.values():
                    for record in records:
                        event = json.loads(record.value)
                        status = FINAL.get(event["event_type"])
                        if status is not None:
                            appended = record.timestamp / 1000
                            self.seen.setdefault(event["aggregate_id"], (appended, status))
                            self.arrived.set()
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def prepare(
    session: aiohttp.ClientSession, url: str, customers: int, skus: int, units: int
) -> None:
    gate = asyncio.Semaphore(16)

    async def call(path: str, body: dict[str, object]) -> None:
        async with gate, session.post(f"{url}{path}", json=body) as response:
            if response.status not in (201, 202):
                raise RuntimeError(f"{path}: {response.status} {await response.text()}")

    await asyncio.gather(
        *(call("/accounts", {"account_id": f"b-{c}", "owner": f"C{c}"}) for c in range(customers))
    )
    await asyncio.gather(
        *(call(f"/accounts/b-{c}/deposits", {"amount": "1000000.00"}) for c in range(customers))
    )
    await asyncio.gather(
        *(call(f"/products/BSKU-{s}/stock", {"quantity": units}) for s in range(skus))
    )


def order_body(label: str, n: int, customers: int, skus: int) -> dict[str, object]:
    return {
        "order_id": f"{label}-{n}",
        "customer_id": f"b-{n % customers}",
        "lines": [
            {"sku": f"BSKU-{(n + i) % skus}", "quantity": 1, "unit_price": "9.99"}
            for i in range(1 + n % 3)
        ],
    }


async def place(
    session: aiohttp.ClientSession, urls: list[str], phase: Phase, seconds: float, args: Args
) -> None:
    """Order i is sent at i / rate s, to worker i mod n, whether or not others were answered."""
    total = int(phase.rate * seconds)
    label = f"r{phase.rate:g}"
    started = time.perf_counter()
    phase.first_sent = time.time()

    async def one(i: int) -> None:
        delay = started + i / phase.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = order_body(label, i, args.customers, args.skus)
        sent, sent_at = time.perf_counter(), time.time()
        try:
            async with session.post(f"{urls[i % len(urls)]}/orders", json=body) as response:
                await response.read()
                status = str(response.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            status = type(error).__name__
        phase.statuses[status] += 1
        if status == "202":
            phase.post_ms.append((time.perf_counter() - sent) * 1000)
            phase.sent[str(body["order_id"])] = sent_at

    await asyncio.gather(*(one(i) for i in range(total)))
    phase.last_sent = time.time()


async def drain(finals: Finals, phase: Phase, patience: float) -> None:
    """Until every accepted order is final, or `patience` s went by."""
    deadline = time.perf_counter() + patience
    while any(o not in finals.seen for o in phase.sent):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return
        finals.arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finals.arrived.wait(), remaining)


def report(phase: Phase, finals: Finals) -> tuple[int, float]:
    """Prints the phase; returns (orders final, completed orders/s)."""
    done = {o: finals.seen[o] for o in phase.sent if o in finals.seen}
    outcomes = collections.Counter(status for _, status in done.values())
    if phase.post_ms:
        ms = phase.post_ms
        line(
            f"{phase.rate:g}/s POST /orders",
            f"p50 {pct(ms, 50):6.1f} ms  p99 {pct(ms, 99):7.1f} ms",
            str(dict(phase.statuses)),
        )
    if not done:
        line(f"{phase.rate:g}/s final", "none", f"{len(phase.sent)} accepted")
        return 0, 0.0
    latency = [(at - phase.sent[o]) * 1000 for o, (at, _) in done.items()]
    last = max(at for at, _ in done.values())
    throughput = len(done) / (last - phase.first_sent)
    line(
        f"{phase.rate:g}/s POST -> final",
        f"p50 {pct(latency, 50):6.0f} ms  p99 {pct(latency, 99):7.0f} ms  max {max(latency):7.0f}",
        str(dict(outcomes)),
    )
    missing = len(phase.sent) - len(done)
    line(
        f"{phase.rate:g}/s completed",
        f"{throughput:6.1f} orders/s",
        f"{missing} of {len(phase.sent)} accepted not final at the end",
    )
    return len(done), throughput


async def record_counts(bootstrap: str, system_id: str) -> dict[str, int]:
    """Records appended so far to each topic of the namespace."""
    names = await app_topics(bootstrap, system_id)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(name, p)
            for name in names
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    totals: collections.Counter[str] = collections.Counter()
    for tp, end in ends.items():
        totals[tp.topic.removeprefix(f"{system_id}.")] += end
    return dict(totals)


class Args(argparse.Namespace):
    rates: str
    seconds: float
    drain: float
    workers: int
    customers: int
    skus: int
    profile: Path | None
    profile_rate: float


async def main_async(args: Args, system: System, workers: list[Worker]) -> None:
    rates = [float(r) for r in args.rates.split(",") if r]
    urls = [worker.url for worker in workers]
    pids = [w.process.pid for w in workers if w.process is not None]
    units = int(sum(rates) * args.seconds * 3 / args.skus) + 100
    connector = aiohttp.TCPConnector(limit=2048)
    timeout = aiohttp.ClientTimeout(total=60)
    finals = Finals(system.bootstrap, system.topic("orders.events"))
    await finals.start()
    results: list[tuple[float, int, float]] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await prepare(session, urls[0], args.customers, args.skus, units)
        for rate in rates:
            print(f"\n== {rate:g} orders/s for {args.seconds:.0f} s (open loop)")
            phase = Phase(rate)
            before = await record_counts(system.bootstrap, system.id)
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            profiling = args.profile is not None and rate == args.profile_rate
            spy = start_profile(pids[0], args.profile) if profiling and args.profile else None
            await place(session, urls, phase, args.seconds, args)
            await drain(finals, phase, args.drain)
            stop_profile(spy)
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
            after = await record_counts(system.bootstrap, system.id)
            final, throughput = report(phase, finals)
            results.append((rate, final, throughput))
            per_topic = {t: after[t] - before.get(t, 0) for t in after}
            appended = sum(per_topic.values())
            if final:
                line(
                    "Kafka records",
                    f"{appended / final:6.1f} per order",
                    ", ".join(
                        f"{t} {n / final:.1f}"
                        for t, n in sorted(per_topic.items(), key=lambda x: -x[1])[:6]
                    ),
                )
                line(
                    "worker CPU",
                    f"{cpu / final * 1000:6.1f} ms per order",
                    f"{cpu:.0f} s over {len(pids)} worker(s)",
                )
    await finals.stop()
    print("\n== summary")
    for rate, final, throughput in results:
        line(f"{rate:g}/s offered", f"{throughput:6.1f} orders/s completed", f"{final} final")
    if args.profile is not None:
        summarize_profile(args.profile, phase=f"the {args.profile_rate:g}/s phase")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="25,50,100", help="fixed arrival rates, orders/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--drain", type=float, default=60.0, help="wait for finals after sends")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--skus", type=int, default=40)
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the first worker")
    parser.add_argument("--profile-rate", type=float, default=50.0, help="the phase to profile")
    args = parser.parse_args(namespace=Args())
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load avg {load}, python {platform.python_version()}")
    print(f"settings: {vars(args)}")
    signal.signal(signal.SIGTERM, _interrupt)
    wait_for_broker(bootstrap_servers(), BROKER_WAIT)
    with tempfile.TemporaryDirectory(prefix="bench-saga-") as workdir:
        system = System(Path(workdir), partitions=PARTITIONS)
        print(f"namespace: {system.id}, broker {system.bootstrap}")
        try:
            workers = [system.worker() for _ in range(args.workers)]
            for worker in workers:
                worker.wait_ready(timeout=180)
            time.sleep(3)  # the group settles with every worker in it
            for worker in workers:
                worker.wait_ready(timeout=180)
            asyncio.run(main_async(args, system, workers))
        finally:
            system.stop()  # its workers, then its topics


if __name__ == "__main__":
    main()
