"""Windowed throughput: events/s through the analytics folds, against the ceilings.

    python -m bench.analytics [--events 20000]

One run, one machine, ratios not absolutes:

1. the pure fold in-process (domain.analytics.Analytics over a dict): the CPU ceiling;
2. a raw aiokafka consumer reading the same facts back: the Kafka ceiling;
3. facts written straight to `analytics.facts`, folded by the `analytics` fold
   (a getmany batch at a time, one write per touched key per batch, with its offset);
4. events written to payments.events, through `analytics-facts` (decode, extract,
   repartition to one key) and then `analytics`: the whole windowed path.

Timing for 3 and 4 is from the first send until /analytics/live reports every fact
processed (the worker is already up and idle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.local_shop import System
from domain.analytics import Analytics, Config

BASE_MS = int(time.time() * 1000) - 600_000


def fact(n: int) -> dict[str, Any]:
    at = BASE_MS + n * 20  # 50 events per second of event time, in order
    if n % 3 == 0:
        return {
            "id": f"b{n}",
            "at": at,
            "kind": "placed",
            "amount": "30.00",
            "lines": [[f"S{n % 50}", 1 + n % 3, "20.00"], [f"S{(n * 7) % 50}", 1, "10.00"]],
        }
    return {"id": f"b{n}", "at": at, "kind": "captured", "amount": "30.00"}


def event(n: int) -> tuple[bytes, bytes]:
    order = f"bench-{n}"
    envelope = {
        "event_id": str(uuid.uuid4()),
        "event_type": "PaymentCaptured",
        "schema_version": 1,
        "aggregate_type": "payment",
        "aggregate_id": order,
        "aggregate_version": 1,
        "occurred_at": datetime.fromtimestamp((BASE_MS + n * 20) / 1000, UTC).isoformat(),
        "correlation_id": order,
        "causation_id": "bench",
        "payload": {"customer_id": "c", "amount": "30.00"},
    }
    return order.encode(), json.dumps(envelope).encode()


def pure_fold(count: int) -> float:
    state = Analytics({}, Config(grace=3600, retention=7200))
    facts = [fact(n) for n in range(count)]
    started = time.perf_counter()
    for f in facts:
        state.apply(f, BASE_MS + 3_600_000)
    return count / (time.perf_counter() - started)


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        batch = [await producer.send(topic, value=v, key=k) for k, v in messages]
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


async def raw_read(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        started, seen = time.perf_counter(), 0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                    seen += 1
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def wait_processed(url: str, target: int, patience: float = 300) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/analytics/live", timeout=10)
            if response.status_code == 200:
                health = response.json()["health"]
                if health["facts_processed"] + health["duplicates_ignored"] >= target:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"not {target} facts processed in {patience}s: {response.text[-600:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    count = args.events
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; events={count}")
    pure = pure_fold(count)
    print(f"1. pure fold in-process            {pure:10.0f} facts/s")
    with tempfile.TemporaryDirectory() as workdir:
        system = System(
            Path(workdir), ANALYTICS_GRACE_SECONDS="3600", ANALYTICS_RETENTION_SECONDS="7200"
        )
        try:
            worker = system.worker().wait_ready(timeout=240)
            facts = [(b"all", json.dumps(fact(n)).encode()) for n in range(count)]
            started = time.perf_counter()
            asyncio.run(produce(system.bootstrap, system.topic("analytics.facts"), facts))
            wait_processed(worker.url, count)
            folded = count / (time.perf_counter() - started)
            raw = asyncio.run(raw_read(system.bootstrap, system.topic("analytics.facts"), count))
            print(f"2. raw aiokafka read + json        {raw:10.0f} facts/s")
            ratio = folded / raw
            print(f"3. analytics fold, windows     {folded:10.0f} facts/s  ({ratio:.2f} of raw)")
            events = [event(n) for n in range(count, 2 * count)]
            started = time.perf_counter()
            asyncio.run(produce(system.bootstrap, system.topic("payments.events"), events))
            wait_processed(worker.url, 2 * count)
            through = count / (time.perf_counter() - started)
            ratio = through / raw
            print(f"4. events->facts->windows  {through:10.0f} events/s ({ratio:.2f} of raw)")
        finally:
            system.stop()


if __name__ == "__main__":
    main()
