"""Helpers for the saga's integration tests: drive the HTTP API, wait (bounded) for the
asynchronous saga to settle, and read an event topic back from offset 0.

Every wait here is bounded and polls; nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from domain.decider import Decider
from models.envelope import EventEnvelope
from models.upcasting import upcast

FINAL = ("shipped", "completed", "cancelled")
"""An order in one of these states has nothing left for the saga to do."""


# --- bounded waiting -------------------------------------------------------------------


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """The first truthy value of `check()`, polling until `timeout` (then AssertionError).

    Transport errors count as "not yet" (a worker may be recovering)."""
    deadline = time.monotonic() + timeout
    value: Any = None
    while True:
        try:
            value = check()
        except httpx.HTTPError as error:
            value = None
            last_error: Any = error
        else:
            last_error = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not true after {timeout}s: last value {value!r}, last error {last_error!r}"
            )
        time.sleep(interval)


def wait_for_status(
    client: httpx.Client,
    order_id: str,
    statuses: Iterable[str] = FINAL,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Poll GET /orders/{id} until its status is one of `statuses`; the order."""
    wanted = tuple(statuses)
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        response = client.get(f"/orders/{order_id}")
        last["response"] = (response.status_code, response.text[:300])
        if response.status_code == 200 and response.json()["status"] in wanted:
            return dict(response.json())
        return None

    try:
        return dict(eventually(check, timeout))
    except AssertionError:
        raise AssertionError(
            f"order {order_id} not in {wanted} after {timeout}s; last answer {last}"
        ) from None


async def wait_for_status_async(
    client: httpx.AsyncClient,
    order_id: str,
    statuses: Iterable[str] = FINAL,
    timeout: float = 60.0,
) -> dict[str, Any]:
    wanted = tuple(statuses)
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            response = await client.get(f"/orders/{order_id}")
            last = (response.status_code, response.text[:300])
            if response.status_code == 200 and response.json()["status"] in wanted:
                return dict(response.json())
        except httpx.HTTPError as error:
            last = repr(error)
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_id} not in {wanted} after {timeout}s: {last}")
        await asyncio.sleep(0.2)


async def wait_all_final(
    urls: list[str], order_ids: list[str], timeout: float = 180.0, concurrency: int = 16
) -> dict[str, dict[str, Any]]:
    """Every order's final state, within one overall bound: rounds of GETs (spread over
    the workers) for the orders not final yet, a pause between rounds."""
    clients = [httpx.AsyncClient(base_url=url, timeout=30.0) for url in urls]
    gate = asyncio.Semaphore(concurrency)
    deadline = time.monotonic() + timeout
    finals: dict[str, dict[str, Any]] = {}
    last: dict[str, Any] = {}

    async def look(n: int, order_id: str) -> None:
        async with gate:
            try:
                response = await clients[n % len(clients)].get(f"/orders/{order_id}")
            except httpx.HTTPError as error:
                last[order_id] = repr(error)
                return
        if response.status_code == 200 and response.json()["status"] in FINAL:
            finals[order_id] = dict(response.json())
        else:
            last[order_id] = (response.status_code, response.text[:200])

    try:
        while True:
            waiting = [o for o in order_ids if o not in finals]
            await asyncio.gather(*(look(n, o) for n, o in enumerate(waiting)))
            waiting = [o for o in order_ids if o not in finals]
            if not waiting:
                return finals
            if time.monotonic() > deadline:
                sample = {o: last.get(o) for o in waiting[:5]}
                raise AssertionError(
                    f"{len(waiting)} of {len(order_ids)} orders not final after {timeout}s: "
                    f"{sample}"
                )
            await asyncio.sleep(1.0)
    finally:
        for client in clients:
            await client.aclose()


async def post_until_answered(
    clients: list[httpx.AsyncClient],
    path: str,
    body: dict[str, Any] | None,
    key: str,
    timeout: float = 180.0,
    first: int = 0,
) -> httpx.Response:
    """POST with one Idempotency-Key until a definitive (non-5xx) answer, moving to the
    next worker after a transport error or a 5xx (a worker may be dead or rebalancing)."""
    deadline = time.monotonic() + timeout
    turn = first
    last: Any = None
    while time.monotonic() < deadline:
        client = clients[turn % len(clients)]
        try:
            response = await client.post(path, json=body, headers={"Idempotency-Key": key})
            if response.status_code < 500:
                return response
            last = (response.status_code, response.text[:200])
        except httpx.HTTPError as error:
            last = repr(error)
        turn += 1
        await asyncio.sleep(0.3)
    raise AssertionError(f"no answer to POST {path} ({key}) within {timeout}s: {last}")


# --- the API -----------------------------------------------------------------------------


def open_account(client: httpx.Client, account_id: str, money: Decimal | str = "0") -> None:
    opened = client.post("/accounts", json={"account_id": account_id, "owner": account_id})
    assert opened.status_code == 201, opened.text
    if Decimal(money) > 0:
        deposit = client.post(f"/accounts/{account_id}/deposits", json={"amount": str(money)})
        assert deposit.status_code == 201, deposit.text


def add_stock(client: httpx.Client, sku: str, quantity: int) -> dict[str, Any]:
    response = client.post(f"/products/{sku}/stock", json={"quantity": quantity})
    assert response.status_code == 201, response.text
    return dict(response.json())


def order_body(
    customer_id: str, *lines: tuple[str, int, str], order_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "lines": [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines],
        **extra,
    }
    if order_id is not None:
        body["order_id"] = order_id
    return body


def place(
    client: httpx.Client,
    customer_id: str,
    *lines: tuple[str, int, str],
    order_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Place an order (202 expected); the answer (order_id, command_id, version...)."""
    response = client.post("/orders", json=order_body(customer_id, *lines, order_id=order_id, **extra))
    assert response.status_code == 202, response.text
    return dict(response.json())


def balance(client: httpx.Client, account_id: str) -> Decimal:
    response = client.get(f"/accounts/{account_id}")
    assert response.status_code == 200, response.text
    return Decimal(response.json()["balance"])


def wait_balance(
    client: httpx.Client, account_id: str, expected: Decimal, timeout: float = 60.0
) -> Decimal:
    """Wait until the account's balance is `expected` (the projection catches up)."""
    seen: list[Decimal] = []

    def check() -> bool:
        response = client.get(f"/accounts/{account_id}")
        if response.status_code != 200:
            return False
        seen.append(Decimal(response.json()["balance"]))
        return seen[-1] == expected

    try:
        eventually(check, timeout)
    except AssertionError:
        raise AssertionError(
            f"balance of {account_id} is {seen[-1:] or '?'}, expected {expected}"
        ) from None
    return expected


def stock_of(client: httpx.Client, sku: str) -> dict[str, Any]:
    response = client.get(f"/products/{sku}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_stock(
    client: httpx.Client, sku: str, on_hand: int, reserved: int = 0, timeout: float = 60.0
) -> dict[str, Any]:
    """Wait until the SKU shows `on_hand` and `reserved`; the stock row."""
    seen: list[dict[str, Any]] = []

    def check() -> dict[str, Any] | None:
        response = client.get(f"/products/{sku}")
        if response.status_code != 200:
            return None
        seen.append(response.json())
        row = seen[-1]
        return row if row["on_hand"] == on_hand and row["reserved"] == reserved else None

    try:
        return dict(eventually(check, timeout))
    except AssertionError:
        raise AssertionError(
            f"stock of {sku} is {seen[-1:] or '?'}, expected on_hand={on_hand} "
            f"reserved={reserved}"
        ) from None


def settled(read: Callable[[], Any], quiet: float = 1.5, timeout: float = 60.0) -> Any:
    """A value that stopped changing for `quiet` seconds (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    value = read()
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        current = read()
        if current != value:
            value, since = current, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
    raise AssertionError(f"still changing after {timeout}s: {value!r}")


# --- the event store -----------------------------------------------------------------------


async def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[EventEnvelope]:
    """Every event on `topic` from offset 0 to its current end (no consumer group),
    deduplicated by event_id, in offset order per partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + timeout
        while not partitions:
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {topic} has no partitions")
            await consumer.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen: set[str] = set()
        events: list[EventEnvelope] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        for tp in tps:
            if tp not in remaining:
                consumer.pause(tp)
        while remaining:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout}s")
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    event = EventEnvelope.model_validate_json(record.value)
                    if str(event.event_id) not in seen:
                        seen.add(str(event.event_id))
                        events.append(event)
                if tp in remaining and await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
                    consumer.pause(tp)
        return events
    finally:
        await consumer.stop()


def by_aggregate(events: Iterable[EventEnvelope]) -> dict[str, list[EventEnvelope]]:
    """Each aggregate's events in version order."""
    grouped: dict[str, list[EventEnvelope]] = defaultdict(list)
    for event in events:
        grouped[event.aggregate_id].append(event)
    for stream in grouped.values():
        stream.sort(key=lambda e: e.aggregate_version)
    return dict(grouped)


def replay(
    decider: Decider[Any, Any, Any], events: Iterable[EventEnvelope]
) -> dict[str, Any]:
    """Each aggregate's state folded from its events (upcast first), checking that
    versions run 1..n without a gap or a repeat."""
    states: dict[str, Any] = {}
    for aggregate_id, stream in by_aggregate(events).items():
        versions = [e.aggregate_version for e in stream]
        assert versions == list(range(1, len(stream) + 1)), (aggregate_id, versions)
        states[aggregate_id] = decider.replay(aggregate_id, (upcast(e) for e in stream))
    return states
