"""One trace id on every record of an order's saga, and a worker whose every line is JSON.

One worker with LOG_FORMAT=json and LOG_LEVEL=debug, its saga steps dispatched
through Kafka (SAGA_LOCAL_DISPATCH=off): every step's command and answer is then
a record too, read back from the topics with its headers. (A step decided in
place carries the trace in memory: tests/unit/test_local_dispatch.py.)
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from models.tracing import trace_id_of, trace_of
from tests.integration.test_order_saga import customer, final_order, place, stock
from tests.system import System, Worker

pytestmark = pytest.mark.integration

SAGA_TOPICS = (
    "orders.events",
    "payments.events",
    "accounts.events",
    "reservations.events",
    "inventory.events",
    "shipping.events",
    "orders.commands",
    "accounts.commands",
    "inventory.commands",
    "payments.answers",
    "reservations.answers",
)


@pytest.fixture(scope="module")
def traced(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[System, Worker]]:
    shop = System(
        tmp_path_factory.mktemp("traced"),
        partitions=2,
        LOG_FORMAT="json",
        LOG_LEVEL="debug",
        SAGA_LOCAL_DISPATCH="off",
    )
    worker = shop.worker().wait_ready()
    yield shop, worker
    shop.stop()


@pytest.fixture(scope="module")
def api(traced: tuple[System, Worker]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=traced[1].url, timeout=30.0) as client:
        customer(client, "ann", "100.00")
        stock(client, "sku-t", 10)
        yield client


def saga_records(system: System, order_id: str) -> dict[str, list[Any]]:
    """Every record of the order's saga, by topic: those whose envelope (event, command
    or answer) has the order as its correlation."""
    found: dict[str, list[Any]] = {}
    for topic in SAGA_TOPICS:
        for record in system.read_records(topic, partitions=2):
            if json.loads(record.value).get("correlation_id") == order_id:
                found.setdefault(topic, []).append(record)
    return found


def trace_ids(records: dict[str, list[Any]]) -> set[str | None]:
    return {trace_id_of(trace_of(r.headers)) for batch in records.values() for r in batch}


def test_every_record_of_an_orders_saga_carries_one_trace(
    traced: tuple[System, Worker], api: httpx.Client
) -> None:
    assert place(api, "o-traced", "ann", ("sku-t", 1, "5.00")).status_code == 202
    assert final_order(api, "o-traced")["status"] == "shipped"
    records = saga_records(traced[0], "o-traced")
    # every kind of record was there to check: events, commands, answers
    assert {"orders.events", "accounts.commands", "payments.answers"} <= set(records)
    assert {"inventory.commands", "reservations.answers", "shipping.events"} <= set(records)
    (trace_id,) = trace_ids(records)
    assert trace_id is not None and len(trace_id) == 32
    steps = api.get("/orders/o-traced/timeline").json()["steps"]
    assert len(steps) >= 6 and {step["trace_id"] for step in steps} == {trace_id}


def test_a_requests_traceparent_is_the_trace_of_its_saga(
    traced: tuple[System, Worker], api: httpx.Client
) -> None:
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    body = {
        "order_id": "o-given",
        "customer_id": "ann",
        "lines": [{"sku": "sku-t", "quantity": 1, "unit_price": "5.00"}],
    }
    response = api.post("/orders", json=body, headers={"traceparent": traceparent})
    assert response.status_code == 202, response.text
    assert final_order(api, "o-given")["status"] == "shipped"
    assert trace_ids(saga_records(traced[0], "o-given")) == {trace_id}


def test_every_line_of_a_json_worker_is_a_json_object_naming_its_context(
    traced: tuple[System, Worker], api: httpx.Client
) -> None:
    system, worker = traced
    assert place(api, "o-logged", "ann", ("sku-t", 1, "5.00")).status_code == 202
    final_order(api, "o-logged")
    asyncio.run(_send_garbage(system.bootstrap, system.topic("orders.commands")))
    lines = _lines_until(worker, lambda line: "dead-lettered" in line.get("message", ""))
    assert all(line["worker"] == worker.name for line in lines)
    (banner,) = [line for line in lines if "banner" in line]  # faust's, as JSON
    assert banner["banner"]["id"] == system.id and banner["level"] == "info"
    readers = [line for line in lines if "reading partitions" in line["message"]]
    assert {line.get("reader") for line in readers} >= {"saga", "orders-timeline"}
    decided = [line for line in lines if line.get("correlation_id") == "o-logged"]
    assert {line["agent"] for line in decided} >= {"order-commands", "payment-commands"}
    assert all(isinstance(line["partition"], int) and line["topic"] for line in decided)
    assert len({line["trace_id"] for line in decided}) == 1  # the order's one trace
    (dead,) = [line for line in lines if "dead-lettered" in line["message"]]
    assert dead["reader"] == "saga" and dead["topic"] == system.topic("orders.commands")
    assert isinstance(dead["partition"], int) and isinstance(dead["offset"], int)


async def _send_garbage(bootstrap: str, topic: str) -> None:
    """A record no service can read: dead-lettered, with a line saying which."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"not a command", key=b"o-garbage")
    finally:
        await producer.stop()


def _lines_until(worker: Worker, found: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every line of the worker's log, each parsed as JSON, once one satisfies `found`."""
    deadline = time.monotonic() + timeout
    while True:
        text = worker.log_path.read_text()
        complete = text[: text.rfind("\n") + 1]  # a line being written is read next time
        lines = [json.loads(line) for line in complete.splitlines()]
        if any(found(line) for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)
