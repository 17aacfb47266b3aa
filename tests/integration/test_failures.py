"""Failures and evolution against the real broker: poison messages, old and future
event versions, a flaky handler, and re-driving a dead letter."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from app import cli
from tests.system import System, Worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def flaky(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A system whose stock service fails twice on every message before succeeding."""
    shop = System(tmp_path_factory.mktemp("failures"), SHOP_FAIL_FIRST="stock-service:2")
    yield shop
    shop.stop()


@pytest.fixture(scope="module")
def node(flaky: System) -> Worker:
    return flaky.worker().wait_ready()


@pytest.fixture(scope="module")
def api(node: Worker) -> httpx.Client:
    return httpx.Client(base_url=node.url, timeout=30.0)


def produce(system: System, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap)
        await producer.start()
        try:
            for key, value in messages:
                await producer.send_and_wait(system.topic(topic), value, key=key)
        finally:
            await producer.stop()

    asyncio.run(send())


def envelope(
    event_type: str, aggregate_id: str, version: int, schema: int, **payload: Any
) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "schema_version": schema,
            "aggregate_type": "order",
            "aggregate_id": aggregate_id,
            "aggregate_version": version,
            "occurred_at": "2026-11-28T10:00:00Z",
            "correlation_id": aggregate_id,
            "causation_id": "test",
            "payload": payload,
        }
    ).encode()


def eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s")
        time.sleep(0.2)


def dead_letters(api: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    # 503 not_ready is the documented "retry": the letters' fold is catching up (after a
    # rebalance, which a loaded machine's start-up can bring)
    response = eventually(
        lambda: (r := api.get("/ops/dead-letters", params=filters)).status_code != 503 and r
    )
    assert response.status_code == 200, response.text
    return list(response.json()["dead_letters"])


def test_poison_messages_are_dead_lettered_and_the_partition_goes_on(
    flaky: System, api: httpx.Client
) -> None:
    key = b"acc-poison"
    bad_payload = envelope("AccountOpened", "acc-poison", 1, 1, nope=1).replace(
        b'"aggregate_type": "order"', b'"aggregate_type": "account"'
    )
    future = envelope("AccountOpened", "acc-poison", 1, 9, owner="From the future")
    produce(flaky, "accounts.events", [(key, b"\x00not json"), (key, bad_payload), (key, future)])
    # the same partition keeps going: a real account with the same key is projected
    opened = api.post("/accounts", json={"account_id": "acc-poison", "owner": "Pat"})
    assert opened.status_code == 201, opened.text
    state = eventually(
        lambda: (
            (r := api.get("/accounts/acc-poison", params={"min_version": 1})).status_code == 200
            and r.json()
        )
    )
    assert state["owner"] == "Pat"

    letters = eventually(
        lambda: len(found := dead_letters(api, topic=flaky.topic("accounts.events"))) >= 3 and found
    )
    by_type = {letter["error_type"] for letter in letters}
    assert {"ValidationError", "UnknownSchemaVersion"} <= by_type
    future_letter = next(x for x in letters if x["error_type"] == "UnknownSchemaVersion")
    assert "v9 is newer than this code" in future_letter["error"]
    assert future_letter["agent"] == "accounts-projection"
    assert future_letter["attempts"] == 1  # a permanent error is not retried
    filtered = dead_letters(api, error="newer than this code")
    assert [x["id"] for x in filtered] == [future_letter["id"]]


def open_the_shop(api: httpx.Client, customer: str, sku: str, funds: str) -> None:
    """An account with `funds` and ten of `sku` in stock, as a client would set them up: a
    503 (Retry-After) is retried with the same Idempotency-Key."""
    for path, body in (
        ("/accounts", {"account_id": customer, "owner": customer}),
        (f"/accounts/{customer}/deposits", {"amount": funds}),
        (f"/products/{sku}/stock", {"quantity": 10}),
    ):
        sent = eventually(
            lambda p=path, b=body: (
                (r := api.post(p, json=b, headers={"Idempotency-Key": f"setup{p}"})).status_code
                != 503
                and r
            )
        )
        assert sent.status_code == 201, sent.text


def shipped(api: httpx.Client, order_id: str, timeout: float) -> dict[str, Any]:
    return dict(
        eventually(
            lambda: (
                (r := api.get(f"/orders/{order_id}")).status_code == 200
                and r.json()["status"] == "shipped"
                and r.json()
            ),
            timeout=timeout,
        )
    )


def test_old_order_placed_versions_are_upcast_for_projections_and_the_saga(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # events written by older code are on the topic before this code starts
    history = System(tmp_path_factory.mktemp("history"))
    try:
        line = {"sku": "OLD-SKU", "quantity": 1, "unit_price": "10.00"}
        v1 = envelope(
            "OrderPlaced", "old-v1", 1, 1, customer_id="old-customer", lines=[line], total="10.00"
        )
        v2 = envelope(
            "OrderPlaced",
            "old-v2",
            1,
            2,
            customer_id="old-customer",
            lines=[line],
            total="9.00",
            discount="1.00",
        )
        worker = history.worker().wait_ready()
        api = httpx.Client(base_url=worker.url, timeout=30.0)
        open_the_shop(api, "old-customer", "OLD-SKU", "100.00")
        produce(history, "orders.events", [(b"old-v1", v1), (b"old-v2", v2)])
        for order_id in ("old-v1", "old-v2"):
            assert shipped(api, order_id, timeout=60.0)["shipping_address"] is None
        assert api.get("/orders/old-v1").json()["discount"] == "0.00"
        assert api.get("/orders/old-v2").json()["discount"] == "1.00"
        balance = eventually(  # the account's read model trails the saga's appends
            lambda: (
                (r := api.get("/accounts/old-customer")).status_code == 200
                and (b := r.json())["balance"] == "81.00"
                and b
            )
        )
        assert balance["version"] == 4  # opened, deposited, two payments
    finally:
        history.stop()


def test_a_saga_step_can_come_before_the_tail_folds_what_another_producer_appended(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # the orders side's tail is held for a minute once it has read the imported order: the
    # saga's later steps on that order (MarkPaid, ...) reach the orders writer first, which
    # must not refuse them as commands on an unknown order
    imports = System(tmp_path_factory.mktemp("imports"), SHOP_FAULT="tail-fold:stall:60")
    try:
        worker = imports.worker().wait_ready()
        api = httpx.Client(base_url=worker.url, timeout=30.0)
        open_the_shop(api, "importer", "IMPORTED", "50.00")
        line = {"sku": "IMPORTED", "quantity": 2, "unit_price": "5.00"}
        placed = envelope(
            "OrderPlaced",
            "imported-1",
            1,
            2,
            customer_id="importer",
            lines=[line],
            total="10.00",
            discount="0.00",
        )
        produce(imports, "orders.events", [(b"imported-1", placed)])
        assert shipped(api, "imported-1", timeout=30.0)["total"] == "10.00"
        eventually(  # the stock's read model trails the saga's appends
            lambda: (
                (r := api.get("/products/IMPORTED")).status_code == 200 and r.json()["on_hand"] == 8
            )
        )
    finally:
        imports.stop()


def test_a_handler_that_fails_twice_then_succeeds_loses_nothing(api: httpx.Client) -> None:
    # the stock service fails its first two attempts at every command (SHOP_FAIL_FIRST)
    assert api.post("/products/FLAKY/stock", json={"quantity": 3}).status_code == 201
    assert api.post("/products/FLAKY/stock", json={"quantity": 4}).status_code == 201
    stock = api.get("/products/FLAKY", params={"min_version": 2})
    assert stock.status_code == 200, stock.text
    assert stock.json()["on_hand"] == 7
    assert not [x for x in dead_letters(api) if x["agent"] == "stock-service"]


def test_a_dead_letter_is_redriven_once(flaky: System, api: httpx.Client) -> None:
    # an event type this code does not know: every consumer of the topic dead-letters it
    bogus = envelope("OrderTeleported", "teleport-1", 1, 1)
    produce(flaky, "orders.events", [(b"teleport-1", bogus)])
    letter = eventually(
        lambda: next(
            (x for x in dead_letters(api, error="OrderTeleported") if x["status"] == "dead"), None
        )
    )
    retried = api.post(f"/ops/dead-letters/{letter['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "redriven"
    again = api.post(f"/ops/dead-letters/{letter['id']}/retry")
    assert again.status_code == 409
    # the cause is not fixed, so it is dead-lettered again: a new letter, at a new offset
    letters = eventually(
        lambda: len(found := dead_letters(api, error="OrderTeleported")) >= 2 and found
    )
    assert len({x["id"] for x in letters}) == len(letters)
    assert api.post("/ops/dead-letters/nope:0:0/retry").status_code == 404


def shop(node: Worker, *args: str) -> subprocess.CompletedProcess[str]:
    """The `shop` command line, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args[:1], "--url", node.url, *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dead_letters_from_the_command_line(flaky: System, node: Worker, api: httpx.Client) -> None:
    produce(flaky, "orders.events", [(b"vanish-1", envelope("OrderVanished", "vanish-1", 1, 1))])
    eventually(lambda: dead_letters(api, error="OrderVanished"))
    listed = shop(node, "dead-letters", "list", "--error", "OrderVanished", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)
    assert letters and all("OrderVanished" in x["error"] for x in letters)
    assert {x["source_topic"] for x in letters} == {flaky.topic("orders.events")}
    text = shop(node, "dead-letters", "list", "--topic", flaky.topic("orders.events"))
    assert letters[0]["id"] in text.stdout and "dead letter(s)" in text.stderr

    first = letters[0]["id"]
    retried = shop(node, "dead-letters", "retry", first)
    assert retried.returncode == 0, retried.stderr
    assert f"{first}: re-driven to {flaky.topic('orders.events')}" in retried.stdout
    again = shop(node, "dead-letters", "retry", first, "nope:0:0")
    assert again.returncode == 1
    assert "409 already_redriven" in again.stderr and "404 not_found" in again.stderr


def test_an_empty_data_dir_refolds_the_dead_letters_and_redrives_nothing_again(
    flaky: System, node: Worker, api: httpx.Client
) -> None:
    """The dead letters are a fold of their topic: from an empty disk the same letters
    come back with the same statuses (a discarded one with its reason), and no re-drive
    is sent a second time."""

    def redriven_copies() -> int:
        kinds = (json.loads(raw)["event_type"] for raw in flaky.read_topic("orders.events"))
        return sum(kind in ("OrderTeleported", "OrderVanished") for kind in kinds)

    def statuses() -> set[tuple[str, str, str | None]]:
        return {(x["id"], x["status"], x["close_reason"]) for x in dead_letters(api, limit="1000")}

    # one more letter of the re-driven message, dead again: discarded, with a reason
    again = eventually(lambda: dead_letters(api, error="OrderVanished", status="dead"))
    discarded = api.post(
        f"/ops/dead-letters/{again[0]['id']}/discard", params={"reason": "a test's order"}
    )
    assert discarded.status_code == 200, discarded.text
    before, copies = statuses(), redriven_copies()
    assert ("redriven" in {status for _, status, _ in before}) and copies >= 3
    assert (again[0]["id"], "discarded", "a test's order") in before
    node.kill()
    shutil.rmtree(node.datadir)
    node.start().wait_ready(timeout=240)
    eventually(lambda: api.get("/ops/dead-letters").status_code == 200 and statuses() >= before)
    time.sleep(3)  # a re-drive sent again would be on the topic by now
    assert statuses() == before
    assert redriven_copies() == copies


def test_a_filter_retries_exactly_what_its_dry_run_counted(
    flaky: System, api: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three poison events; one letter resolved; a dry run counts the other two; a fourth
    arrives after the count. The run given the count's bound re-drives exactly the two."""
    mine = {"agent": "orders-projection", "error": "OrderMisfiled"}

    def listed(**more: str) -> list[dict[str, Any]]:
        return dead_letters(api, **mine, **more)

    def poison(n: int) -> None:
        key = f"misfiled-{n}"
        produce(flaky, "orders.events", [(key.encode(), envelope("OrderMisfiled", key, 1, 1))])

    for n in range(3):
        poison(n)
    first, second, third = eventually(lambda: len(found := listed()) == 3 and found)
    resolved = api.post(
        f"/ops/dead-letters/{first['id']}/resolve", params={"reason": "re-entered by hand"}
    )
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["close_reason"]) == (
        "resolved",
        "re-entered by hand",
    )
    assert api.post(f"/ops/dead-letters/{first['id']}/retry").json()["error"] == "closed"

    counted = api.post("/ops/dead-letters/retry", params={**mine, "dry_run": "true"})
    assert counted.status_code == 200, counted.text
    count = counted.json()
    assert count["dry_run"] and count["matched"] == 2 and count["remaining"] == 0
    assert sorted(count["ids"]) == sorted([second["id"], third["id"]])
    poison(3)  # after the count: it matches the filter, and is past the bound
    four = eventually(lambda: len(found := listed()) == 4 and found)
    (fourth,) = {x["id"] for x in four} - {first["id"], second["id"], third["id"]}

    assert cli.main(
        ["dead-letters", "--url", str(api.base_url), "retry-matching",
         "--agent", mine["agent"], "--error", mine["error"], "--through", str(count["through"])]
    ) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert sorted(out.splitlines()) == sorted(f"{i}: re-driven" for i in count["ids"])
    states = {x["id"]: x["status"] for x in listed()}
    assert states[first["id"]] == "resolved"
    assert [states[i] for i in count["ids"]] == ["redriven", "redriven"]
    assert states[fourth] == "dead"  # untouched
    # the re-driven ones failed again under new ids, past the bound: nothing left under it
    again = api.post("/ops/dead-letters/retry", params={**mine, "through": count["through"]})
    assert again.status_code == 200 and again.json()["matched"] == 0, again.text
    eventually(lambda: len(listed()) == 6)


def test_bad_dead_letter_requests_name_the_field(api: httpx.Client) -> None:
    for path, params, field in (
        ("/ops/dead-letters/retry", {"failed_after": "yesterday"}, "failed_after"),
        ("/ops/dead-letters/retry", {"dry_run": "maybe"}, "dry_run"),
        ("/ops/dead-letters/retry", {"through": "-1"}, "through"),
        ("/ops/dead-letters/a:0:1:x/resolve", {}, "reason"),
        ("/ops/dead-letters/a:0:1:x/discard", {"reason": "  "}, "reason"),
    ):
        refused = api.post(path, params=params)
        assert refused.status_code == 422, (path, refused.text)
        assert [f["field"] for f in refused.json()["fields"]] == [field]
    missing = api.post("/ops/dead-letters/nope:0:0:x/discard", params={"reason": "dup"})
    assert missing.status_code == 404
