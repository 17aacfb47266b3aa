"""`shop traffic`, `shop load` and `shop dead-letters` through app/http_client.py, against
a fake worker (a local aiohttp server): each tool's requests and what it makes of the
answers. No broker, no faust worker."""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app import cli, dead_letters_cli
from app.http_client import ApiClient
from app.load import run_load

LETTERS: list[dict[str, Any]] = [
    {
        "id": f"t.orders.events:0:{n}:orders",
        "status": "dead",
        "source_topic": "t.orders.events",
        "partition": 0,
        "offset": n,
        "agent": "orders",
        "attempts": 3,
        "error_type": "KeyError",
        "error": f"bad {n}",
    }
    for n in range(5)
]


class FakeWorker:
    """Answers the commands (201, orders 202) and the dead-letter endpoints; remembers
    every request as (method, path, query)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.keys: Counter[str] = Counter()
        self.tokens: set[str | None] = set()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path, dict(request.query)))
        self.tokens.add(request.headers.get("Authorization"))
        if "Idempotency-Key" in request.headers:
            self.keys[request.headers["Idempotency-Key"]] += 1
        if request.path == "/ops/dead-letters":
            after = request.query.get("after")
            limit = int(request.query["limit"])
            rest = [x for x in LETTERS if after is None or x["id"] > after]
            page = rest[:limit]
            next_after = page[-1]["id"] if len(page) == limit else None
            return web.json_response({"dead_letters": page, "next_after": next_after})
        if request.path.startswith("/ops/dead-letters/"):
            letter_id = request.path.split("/")[3]
            if letter_id == LETTERS[0]["id"]:
                return web.json_response({"status": "redriven", "source_topic": "t.orders.events"})
            if letter_id == "gone":
                return web.Response(status=500, text="boom")
            return web.json_response({"error": "not_found", "reason": "no such"}, status=404)
        await request.read()
        return web.json_response({}, status=202 if request.path == "/orders" else 201)


@pytest.fixture
async def worker() -> AsyncIterator[tuple[FakeWorker, str]]:
    fake = FakeWorker()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_dead_letters_are_fetched_page_by_page(worker: tuple[FakeWorker, str]) -> None:
    fake, url = worker
    async with ApiClient(url) as client:
        every = await dead_letters_cli.fetch_dead_letters(client, "t.orders.events", None, 2, True)
        first = await dead_letters_cli.fetch_dead_letters(client, None, "bad", 3, False)
    assert [x["id"] for x in every] == [x["id"] for x in LETTERS]
    assert [x["id"] for x in first] == [x["id"] for x in LETTERS[:3]]
    queries = [query for _, _, query in fake.requests]
    assert queries[:3] == [
        {"limit": "2", "topic": "t.orders.events"},
        {"limit": "2", "topic": "t.orders.events", "after": LETTERS[1]["id"]},
        {"limit": "2", "topic": "t.orders.events", "after": LETTERS[3]["id"]},
    ]
    assert queries[3:] == [{"limit": "3", "error": "bad"}]


async def test_dead_letters_retry_says_what_each_answer_was(
    worker: tuple[FakeWorker, str], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    fake, url = worker
    monkeypatch.setenv("API_TOKEN", "ops-token")
    args = argparse.Namespace(url=url, ids=[LETTERS[0]["id"], "nope", "gone"])
    assert await dead_letters_cli.retry(args) == 2
    out, err = capsys.readouterr()
    assert out == f"{LETTERS[0]['id']}: re-driven to t.orders.events\n"
    assert err == "nope: 404 not_found: no such\ngone: 500: boom\n"
    assert [m for m, _, _ in fake.requests] == ["POST"] * 3
    assert fake.tokens == {"Bearer ops-token"} and not fake.keys


async def test_dead_letters_retry_without_a_worker(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(url="http://127.0.0.1:9", ids=["x:0:0:a"])
    assert await dead_letters_cli.retry(args) == 1
    assert capsys.readouterr().err.startswith("x:0:0:a: POST http://127.0.0.1:9/ops/")


def test_dead_letters_list_without_a_worker_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(
        url="http://127.0.0.1:9", topic=None, error=None, limit=10, all=False, json=True
    )
    assert dead_letters_cli.run_list(args) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("shop dead-letters: GET http://127.0.0.1:9/ops/")


async def test_load_sets_up_then_places_every_order_once(worker: tuple[FakeWorker, str]) -> None:
    fake, url = worker
    stats = await run_load([url], 6, 500.0, 3, 2, seed=1, token="tk", progress=False)
    assert stats.summary()["sent"] == 6 and stats.accepted == 6 and stats.failed == 0
    assert stats.retries == 0 and stats.statuses == Counter({202: 6})
    paths = Counter(path for _, path, _ in fake.requests)
    assert paths["/accounts"] == 3 and paths["/orders"] == 6
    assert sum(n for p, n in paths.items() if p.startswith("/products/")) == 2
    assert set(fake.keys.values()) == {1}  # one key per command, nothing sent twice
    assert fake.tokens == {"Bearer tk"}


async def test_traffic_runs_until_its_duration(worker: tuple[FakeWorker, str]) -> None:
    fake, url = worker
    args = cli.build_parser().parse_args(
        ["traffic", "--url", url, "--rate", "200", "--accounts", "2", "--duration", "0.3"]
    )
    args.token = ""
    stats = await cli.traffic(args, asyncio.Event())
    assert stats.sent == len(fake.requests) == sum(fake.keys.values())
    assert stats.accepted == stats.sent and stats.retries == 0 and not stats.errors
    assert [path for _, path, _ in fake.requests][: len(cli.SKUS)] == [
        f"/products/{sku}/stock" for sku in cli.SKUS
    ]
    assert fake.tokens == {None}
    assert f"accepted={stats.sent}" in stats.line()
