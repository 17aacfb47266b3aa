"""app/http_client.py against local aiohttp test servers: the retrying poster's rules
(one Idempotency-Key across retries, Retry-After on 503/504, bounded attempts, the
bearer token, round robin over the workers) and the single GET and POST. No broker."""

from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.http_client import (
    BACKOFF,
    MAX_ATTEMPTS,
    MAX_BACKOFF,
    MAX_RETRY_AFTER,
    ApiClient,
    FinishedCommand,
    Tally,
    Unreachable,
    refusal,
    retry_after,
)

Answer = tuple[int, dict[str, str]]
"""What a scripted server answers: status and headers."""


class Script:
    """A worker that answers each request with the next scripted answer (the last repeats)
    and remembers what it was sent."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.seen: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        status, headers = self.answers[min(len(self.seen), len(self.answers)) - 1]
        return web.json_response({"n": len(self.seen)}, status=status, headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


@pytest.fixture
async def servers() -> AsyncIterator[list[TestServer]]:
    started: list[TestServer] = []
    yield started
    for server in started:
        await server.close()


async def serve(servers: list[TestServer], script: Script) -> str:
    server = TestServer(script.app(), host="127.0.0.1")
    await server.start_server()
    servers.append(server)
    return str(server.make_url("")).rstrip("/")


class Sleeps:
    """Stands in for asyncio.sleep: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_command_is_retried_with_the_same_key_after_retry_after(
    servers: list[TestServer],
) -> None:
    script = Script((503, {"Retry-After": "2"}), (504, {"Retry-After": "3"}), (201, {}))
    url = await serve(servers, script)
    sleeps = Sleeps()
    async with ApiClient(url, token="s3cret", sleep=sleeps) as client:
        status = await client.command("/accounts", {"account_id": "a-1"})
    assert status == 201
    assert len(script.seen) == 3
    keys = {seen["headers"]["Idempotency-Key"] for seen in script.seen}
    assert len(keys) == 1 and next(iter(keys))
    assert all(seen["headers"]["Authorization"] == "Bearer s3cret" for seen in script.seen)
    assert all(seen["body"] == b'{"account_id": "a-1"}' for seen in script.seen)
    assert sleeps.waits == [2.0, 3.0]
    assert client.tally == Tally(sent=1, retries=2, statuses=Counter({201: 1}))


async def test_each_command_has_its_own_key(servers: list[TestServer]) -> None:
    script = Script((201, {}))
    url = await serve(servers, script)
    async with ApiClient(url, sleep=Sleeps()) as client:
        await client.command("/a", {})
        await client.command("/a", {})
    first, second = (seen["headers"]["Idempotency-Key"] for seen in script.seen)
    assert first != second
    assert "Authorization" not in script.seen[0]["headers"]  # no token, no header


async def test_without_retry_after_it_backs_off_and_gives_up_after_max_attempts(
    servers: list[TestServer],
) -> None:
    script = Script((503, {}))
    url = await serve(servers, script)
    sleeps = Sleeps()
    async with ApiClient(url, sleep=sleeps) as client:
        status = await client.command("/orders", {"order_id": "o-1"})
    assert status == 503  # the last answer, after every attempt
    assert len(script.seen) == MAX_ATTEMPTS
    assert sleeps.waits == [min(BACKOFF * 2**n, MAX_BACKOFF) for n in range(1, MAX_ATTEMPTS)]
    assert client.tally == Tally(sent=1, retries=MAX_ATTEMPTS - 1, statuses=Counter({503: 1}))


async def test_a_refusal_is_final_at_once(servers: list[TestServer]) -> None:
    script = Script((409, {"Retry-After": "1"}))
    url = await serve(servers, script)
    sleeps = Sleeps()
    async with ApiClient(url, sleep=sleeps) as client:
        assert await client.command("/accounts", {}) == 409
    assert len(script.seen) == 1 and sleeps.waits == []
    assert client.tally == Tally(sent=1, statuses=Counter({409: 1}))


async def test_no_answer_is_retried_then_none(servers: list[TestServer]) -> None:
    sleeps = Sleeps()
    async with ApiClient(f"http://127.0.0.1:{closed_port()}", max_attempts=3, sleep=sleeps) as c:
        assert await c.command("/accounts", {}) is None
    assert c.tally.sent == 1 and c.tally.retries == 2 and not c.tally.statuses
    assert sum(c.tally.errors.values()) == 3
    assert sleeps.waits == [BACKOFF * 2, BACKOFF * 4]


async def test_attempts_go_round_the_workers(servers: list[TestServer]) -> None:
    busy, free = Script((503, {"Retry-After": "1"})), Script((201, {}))
    urls = [await serve(servers, busy), await serve(servers, free) + "/"]
    async with ApiClient(urls, sleep=Sleeps()) as client:
        assert await client.command("/orders", {"order_id": "o-2"}) == 201
    assert len(busy.seen) == 1 and len(free.seen) == 1
    assert busy.seen[0]["headers"]["Idempotency-Key"] == free.seen[0]["headers"]["Idempotency-Key"]
    assert free.seen[0]["path"] == "/orders"  # a trailing slash on a URL is not doubled


async def test_a_shared_tally_counts_for_the_caller(servers: list[TestServer]) -> None:
    url = await serve(servers, Script((201, {})))
    tally = Tally()
    async with ApiClient(url, tally=tally, sleep=Sleeps()) as client:
        await client.command("/a", {})
    assert client.tally is tally and tally.sent == 1


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("1", 1.0), ("0.5", 0.5), ("3600", MAX_RETRY_AFTER), ("soon", None)],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert retry_after(header) == seconds


async def test_get_and_post_are_sent_once_with_the_token(servers: list[TestServer]) -> None:
    script = Script((503, {"Retry-After": "1"}))
    url = await serve(servers, script)
    async with ApiClient(url, token="t0k") as client:
        got = await client.get("/ops/dead-letters", params={"limit": 5, "topic": "x.y"})
        posted = await client.post("/ops/dead-letters/a:0:1/retry")
    assert (got.status, posted.status) == (503, 503)  # not retried: answered as they came
    assert got.json() == {"n": 1} and posted.text == '{"n": 2}'
    get, post = script.seen
    assert (get["method"], get["path"], get["query"]) == (
        "GET",
        "/ops/dead-letters",
        {"limit": "5", "topic": "x.y"},
    )
    assert (post["method"], post["path"], post["body"]) == (
        "POST",
        "/ops/dead-letters/a:0:1/retry",
        b"",
    )
    assert all(seen["headers"]["Authorization"] == "Bearer t0k" for seen in script.seen)
    assert all("Idempotency-Key" not in seen["headers"] for seen in script.seen)


async def test_no_answer_to_a_get_is_unreachable() -> None:
    async with ApiClient(f"http://127.0.0.1:{closed_port()}") as client:
        with pytest.raises(Unreachable, match=r"^GET http://127\.0\.0\.1:\d+/ops/dead-letters: "):
            await client.get("/ops/dead-letters")


async def test_outside_async_with_it_says_so() -> None:
    with pytest.raises(RuntimeError, match="async with"):
        await ApiClient("http://127.0.0.1:9").get("/")


class Kept(Tally):
    """A tally that keeps each finished command, as the soak's does."""

    def __init__(self) -> None:
        super().__init__()
        self.done: list[FinishedCommand] = []

    def finished(self, command: FinishedCommand) -> None:
        self.done.append(command)


async def test_a_finished_command_reports_its_answer_attempts_and_whole_wait(
    servers: list[TestServer],
) -> None:
    url = await serve(servers, Script((503, {"Retry-After": "1"}), (201, {})))
    kept = Kept()
    async with ApiClient(url, tally=kept, sleep=Sleeps()) as client:
        await client.command("/accounts/a-1/deposits", {"amount": "1.00"})
    [command] = kept.done
    assert (command.path, command.body, command.status) == (
        "/accounts/a-1/deposits",
        {"amount": "1.00"},
        201,
    )
    assert json.loads(command.answer) == {"n": 2}
    assert command.attempts == 2 and command.ended >= command.started
    assert command.refusals == ("503",)


def test_a_refusal_names_the_error_code_or_the_missing_answer() -> None:
    assert refusal(503, b'{"error": "saga_busy", "reason": "..."}') == "503 saga_busy"
    assert refusal(504, b"not json") == "504"
    assert refusal(None, b"ServerDisconnectedError") == "ServerDisconnectedError"
