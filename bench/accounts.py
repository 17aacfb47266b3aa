"""Account events: the projection's throughput against a raw consumer, and command latency.

    python -m bench.accounts [--events 20000] [--commands 1000] [--concurrency 16]

In one run, on one isolated copy of the system (real broker, a real worker):
1. the ceiling: a plain aiokafka consumer reading N account events (raw, and
   decoding each into an EventEnvelope);
2. the projection: with the worker running, produce N events and time until the
   consumer group has committed them all (events/s), and the ratio to the ceiling;
3. commands: HTTP POST deposit -> 201 round trip, p50/p99, sequential and concurrent.
Figures from a shared machine: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from models.accounts import AccountOpened, MoneyDeposited
from models.envelope import EventEnvelope
from tests.system import System

ACCOUNTS = 1000


def events(n: int, run: str) -> list[tuple[bytes, bytes]]:
    """n valid account events: each account opened, then deposits (versions 1..k)."""
    out: list[tuple[bytes, bytes]] = []
    versions: dict[str, int] = {}
    for i in range(n):
        account = f"bench-{run}-{i % ACCOUNTS}"
        version = versions[account] = versions.get(account, 0) + 1
        payload = (
            AccountOpened(owner="bench")
            if version == 1
            else MoneyDeposited(amount=Decimal("1.00"), reference=None)
        )
        envelope = EventEnvelope(
            event_id=uuid.uuid4(),
            event_type=type(payload).event_type,
            schema_version=1,
            aggregate_type="account",
            aggregate_id=account,
            aggregate_version=version,
            occurred_at=datetime.now(UTC),
            correlation_id=account,
            causation_id="bench",
            payload=payload.model_dump(mode="json"),
        )
        out.append((account.encode(), envelope.model_dump_json().encode()))
    return out


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=262144)
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def ceiling(bootstrap: str, topic: str, n: int, decode: bool) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(8)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        started = time.perf_counter()
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                if decode:
                    for record in records:
                        EventEnvelope.model_validate_json(record.value)
                seen += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def committed_total(bootstrap: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic)
    finally:
        await admin.close()


async def projection(system: System, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    base = await committed_total(system.bootstrap, system.id, topic)
    started = time.perf_counter()
    await produce(system.bootstrap, topic, records)
    while True:  # polling Kafka's committed offsets: the measure is outside the app
        if await committed_total(system.bootstrap, system.id, topic) >= base + len(records):
            break
        await asyncio.sleep(0.2)
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def commands(url: str, total: int, concurrency: int) -> tuple[float, float, float]:
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        for n in range(concurrency):
            await client.post("/accounts", json={"account_id": f"cmd-{n}", "owner": "bench"})
        latencies: list[float] = []
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                started = time.perf_counter()
                response = await client.post(
                    f"/accounts/cmd-{i % concurrency}/deposits", json={"amount": "1.00"}
                )
                assert response.status_code == 201, response.text
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    return total / elapsed, pct(ms, 50), pct(ms, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; {vars(args)}")
    with tempfile.TemporaryDirectory() as workdir:
        system = System(Path(workdir))
        try:
            worker = system.worker().wait_ready()
            topic = system.topic("accounts.events")
            records = events(args.events, uuid.uuid4().hex[:6])
            took = asyncio.run(projection(system, topic, records))
            raw = asyncio.run(ceiling(system.bootstrap, topic, args.events, decode=False))
            decoded = asyncio.run(ceiling(system.bootstrap, topic, args.events, decode=True))
            n = args.events
            print(f"raw aiokafka read            {n / raw:10.0f} events/s")
            print(f"raw read + pydantic decode   {n / decoded:10.0f} events/s  (the ceiling)")
            print(f"projection (produce->commit) {n / took:10.0f} events/s")
            print(f"projection / ceiling         {decoded / took:10.2f}")
            for concurrency in (1, args.concurrency):
                total = args.commands if concurrency > 1 else max(100, args.commands // 5)
                rate, p50, p99 = asyncio.run(commands(worker.url, total, concurrency))
                print(
                    f"commands, {concurrency:2d} in flight      {rate:10.0f} /s"
                    f"   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
                )
        finally:
            system.stop()


if __name__ == "__main__":
    main()
