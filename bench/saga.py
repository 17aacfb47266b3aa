"""Orders through the whole saga: throughput and latency from POST to `shipped`.

    python -m bench.saga [--orders 500] [--concurrency 16] [--workers 1]

Starts an isolated copy of the system (real broker, real `faust worker`
processes), stocks SKUs and funds customers, then places orders at the given
concurrency and follows each one until it is shipped (or cancelled). Prints
orders/s through the saga and the POST-to-shipped latency percentiles. Numbers
from one run on a shared machine: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.system import System


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def prepare(client: httpx.AsyncClient, customers: int, skus: int, orders: int) -> None:
    async def call(path: str, body: dict[str, object]) -> None:
        response = await client.post(path, json=body)
        if response.status_code not in (201, 202, 409):
            raise RuntimeError(f"{path}: {response.status_code} {response.text}")

    await asyncio.gather(
        *(call("/accounts", {"account_id": f"b-{c}", "owner": f"C{c}"}) for c in range(customers))
    )
    await asyncio.gather(
        *(call(f"/accounts/b-{c}/deposits", {"amount": "100000.00"}) for c in range(customers))
    )
    await asyncio.gather(
        *(call(f"/products/BSKU-{s}/stock", {"quantity": orders * 2}) for s in range(skus))
    )


async def follow(client: httpx.AsyncClient, order_id: str, patience: float) -> str:
    """Wait server-side (min_version) rather than poll: shipped is the order's version 4;
    a cancelled order stops at a lower version, so look at the status too."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        response = await client.get(f"/orders/{order_id}", params={"min_version": 4})
        if response.status_code == 503:
            current = await client.get(f"/orders/{order_id}")
            if current.status_code == 200 and current.json()["status"] == "cancelled":
                return "cancelled"
            continue
        if response.status_code == 200:
            return str(response.json()["status"])
        await asyncio.sleep(0.2)
    return "timeout"


async def run(urls: list[str], orders: int, concurrency: int, skus: int, customers: int) -> None:
    clients = [httpx.AsyncClient(base_url=url, timeout=60.0) for url in urls]
    await prepare(clients[0], customers, skus, orders)
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        client = clients[n % len(clients)]
        body = {
            "order_id": f"bo-{n}",
            "customer_id": f"b-{n % customers}",
            "lines": [
                {"sku": f"BSKU-{(n + i) % skus}", "quantity": 1, "unit_price": "9.99"}
                for i in range(1 + n % 3)
            ],
        }
        async with gate:
            started = time.perf_counter()
            response = await client.post("/orders", json=body)
            if response.status_code != 202:
                outcomes["rejected"] = outcomes.get("rejected", 0) + 1
                return
            status = await follow(client, f"bo-{n}", patience=120)
            latencies.append(time.perf_counter() - started)
            outcomes[status] = outcomes.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(orders)))
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.aclose()
    print(f"orders placed          {orders}")
    print(f"outcomes               {outcomes}")
    print(f"elapsed                {elapsed:.1f} s")
    print(f"orders/s through saga  {orders / elapsed:.1f}")
    if latencies:
        ms = [x * 1000 for x in latencies]
        print(
            f"POST->final latency    p50 {percentile(ms, 50):.0f} ms"
            f"   p99 {percentile(ms, 99):.0f} ms"
            f"   mean {statistics.mean(ms):.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--skus", type=int, default=20)
    parser.add_argument("--customers", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"settings: {vars(args)}")
    with tempfile.TemporaryDirectory() as workdir:
        system = System(Path(workdir))
        try:
            workers = [system.worker() for _ in range(args.workers)]
            urls = [worker.wait_ready().url for worker in workers]
            asyncio.run(run(urls, args.orders, args.concurrency, args.skus, args.customers))
        finally:
            system.stop()


if __name__ == "__main__":
    main()
