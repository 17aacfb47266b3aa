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

from app import cli, dead_letters_cli, traffic_cli
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
        self.redriven = set()

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
        if request.path == "/ops/dead-letters/retry":
            return self.bulk_retry(request.query)
        if request.path.endswith(("/resolve", "/discard")):
            letter_id, action = request.path.split("/")[3:5]
            if letter_id == "nope":
                return web.json_response({"error": "not_found", "reason": "no such"}, status=404)
            state = {"resolve": "resolved", "discard": "discarded"}[action]
            return web.json_response({"id": letter_id, "status": state})
        if request.path.startswith("/ops/dead-letters/"):
            letter_id = request.path.split("/")[3]
            if letter_id == LETTERS[0]["id"]:
                return web.json_response({"status": "redriven", "source_topic": "t.orders.events"})
            if letter_id == "gone":
                return web.Response(status=500, text="boom")
            return web.json_response({"error": "not_found", "reason": "no such"}, status=404)
        await request.read()
        return web.json_response({}, status=202 if request.path == "/orders" else 201)

    redriven: set[str]
    """What the bulk retry re-drove (or someone else changed: no longer dead)."""
    THROUGH = 40

    def bulk_retry(self, query: Any) -> web.Response:
        """The bulk retry's contract: the dead letters of the topic (if given) below
        `through` (default: THROUGH), up to `limit`; a dry run sends nothing."""
        through = int(query.get("through", self.THROUGH))
        rows = [
            x
            for x in LETTERS
            if x["id"] not in self.redriven
            and x["offset"] < through
            and query.get("topic", x["source_topic"]) == x["source_topic"]
        ]
        taken = [x["id"] for x in rows[: int(query["limit"])]]
        if query.get("dry_run") != "true":
            self.redriven.update(taken)
        body = {
            "dry_run": query.get("dry_run") == "true",
            "through": through,
            "matched": len(rows),
            "ids": taken,
            "remaining": len(rows) - len(taken),
        }
        return web.json_response(body)


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
        every = await dead_letters_cli.fetch_dead_letters(
            client, {"topic": "t.orders.events"}, 2, True
        )
        first = await dead_letters_cli.fetch_dead_letters(client, {"error": "bad"}, 3, False)
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
    args = cli.build_parser().parse_args(
        ["dead-letters", "--url", "http://127.0.0.1:9", "list", "--limit", "10", "--json"]
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
    stats = await traffic_cli.traffic(args, asyncio.Event())
    assert stats.sent == len(fake.requests) == sum(fake.keys.values())
    assert stats.accepted == stats.sent and stats.retries == 0 and not stats.errors
    assert [path for _, path, _ in fake.requests][: len(traffic_cli.SKUS)] == [
        f"/products/{sku}/stock" for sku in traffic_cli.SKUS
    ]
    assert fake.tokens == {None}
    assert f"accepted={stats.sent}" in stats.line()


def dead_letters_args(url: str, *args: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["dead-letters", "--url", url, *args])


async def test_retry_matching_dry_run_counts_lists_and_sends_nothing(
    worker: tuple[FakeWorker, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = worker
    args = dead_letters_args(url, "retry-matching", "--topic", "t.orders.events", "--dry-run")
    assert await dead_letters_cli.retry_matching(args) == 0
    out, err = capsys.readouterr()
    assert out.split() == [x["id"] for x in LETTERS]
    assert "5 dead letter(s) match, dead-lettered below offset 40" in err
    assert "--through 40" in err
    assert [(m, p) for m, p, _ in fake.requests] == [("POST", "/ops/dead-letters/retry")]
    assert fake.requests[0][2] == {"topic": "t.orders.events", "dry_run": "true", "limit": "1000"}
    assert not fake.redriven


async def test_retry_matching_redrives_what_it_counted_with_the_counts_bound(
    worker: tuple[FakeWorker, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = worker
    args = dead_letters_args(url, "retry-matching", "--error-type", "KeyError", "--limit", "2")
    assert await dead_letters_cli.retry_matching(args) == 0
    queries = [query for _, _, query in fake.requests]
    # a count, then rounds of two with the count's bound and the same filter until done
    assert queries[0] == {"error_type": "KeyError", "dry_run": "true", "limit": "2"}
    assert queries[1:] == [{"error_type": "KeyError", "through": "40", "limit": "2"}] * 3
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{x['id']}: re-driven" for x in LETTERS]
    assert "5 dead letter(s) re-driven" in err
    assert fake.redriven == {x["id"] for x in LETTERS}


async def test_retry_matching_with_a_bound_says_what_changed_since_the_count(
    worker: tuple[FakeWorker, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = worker
    fake.redriven.add(LETTERS[3]["id"])  # re-driven by someone else after the count
    args = dead_letters_args(url, "retry-matching", "--through", "3")
    assert await dead_letters_cli.retry_matching(args) == 0
    assert [query for _, _, query in fake.requests] == [{"through": "3", "limit": "1000"}]
    assert fake.redriven == {x["id"] for x in LETTERS[:4]}  # below offset 3, and the one


async def test_resolve_and_discard_send_the_reason(
    worker: tuple[FakeWorker, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = worker
    first = LETTERS[0]["id"]
    args = dead_letters_args(url, "resolve", first, "nope", "--reason", "refunded by hand")
    assert await dead_letters_cli.close(args) == 1
    out, err = capsys.readouterr()
    assert out == f"{first}: resolved\n" and err == "nope: 404 not_found: no such\n"
    assert fake.requests[0] == (
        "POST",
        f"/ops/dead-letters/{first}/resolve",
        {"reason": "refunded by hand"},
    )
    args = dead_letters_args(url, "discard", first, "--reason", "test data")
    assert await dead_letters_cli.close(args) == 0
    assert capsys.readouterr().out == f"{first}: discarded\n"


def test_a_refused_filter_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    args = dead_letters_args("http://127.0.0.1:9", "retry-matching", "--dry-run")
    assert dead_letters_cli.run_retry_matching(args) == 1
    assert capsys.readouterr().err.startswith("shop dead-letters: POST http://127.0.0.1:9/ops/")
