"""The HTTP client of the command-line tools: `shop traffic`, `shop load`, `shop dead-letters`.

One aiohttp session to one or more workers' HTTP API (aiohttp is the workers'
own web server, so the tools need no other HTTP library):

- `command(path, body)`: POSTs a command with an Idempotency-Key that stays the
  same across retries, so nothing counts twice; 503/504 and no answer are
  retried (after Retry-After when the worker sends one, else a backoff), up to
  MAX_ATTEMPTS attempts, each to the next URL in turn. Its `tally` counts what
  happened.
- `get(path, params)` and `post(path)`: one request, the answer as it came;
  `Unreachable` when there was none.

Every request carries the bearer token when one is given.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp

RETRY_STATUSES = frozenset({503, 504})
"""Refused for now (at capacity, or no answer in time): the same command may be sent again."""
MAX_ATTEMPTS = 8
BACKOFF = 0.25
"""Seconds; attempt n waits BACKOFF * 2**n before the next (capped at MAX_BACKOFF)."""
MAX_BACKOFF = 5.0
MAX_RETRY_AFTER = 10.0
"""The longest Retry-After honoured, in seconds."""


class Unreachable(Exception):
    """No HTTP answer: no connection, a dropped one, or a timeout."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        return json.loads(self.body)


@dataclass
class Tally:
    """What `ApiClient.command` went through; one command counts once, however many attempts."""

    sent: int = 0
    retries: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    """The final status of each command answered (after its retries)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Attempts that got no answer, by the error's type."""

    def finished(self, command: FinishedCommand) -> None:
        """One command is over (answered, or out of attempts): a harness that keeps
        each command's answer and timing (the soak) overrides this."""


@dataclass(frozen=True)
class FinishedCommand:
    """A command as its client saw it, from the first attempt to the final answer."""

    path: str
    body: dict[str, Any]
    status: int | None
    """The final status; None: no attempt was answered."""
    answer: bytes
    started: float
    ended: float
    """time.monotonic() at the first attempt and at the final answer (retries included)."""
    attempts: int
    refusals: tuple[str, ...] = ()
    """Why each attempt but the answered one was retried: `503 saga_busy`, `504
    timeout`, or the error of an attempt with no answer (`ServerDisconnectedError`)."""


def refusal(status: int | None, answer: bytes) -> str:
    """An attempt that must be retried, in a word or two: the status and the error code
    of the JSON error envelope, or the error when there was no answer."""
    if status is None:
        return answer.decode(errors="replace")
    try:
        code = json.loads(answer).get("error")
    except (ValueError, AttributeError):
        code = None
    return f"{status} {code}" if isinstance(code, str) else str(status)


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (capped), None when absent or not a number of seconds."""
    try:
        return None if value is None else min(float(value), MAX_RETRY_AFTER)
    except ValueError:
        return None


class ApiClient:
    """A session to the HTTP API of one or more workers; `async with` opens and closes it."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        token: str = "",
        timeout: float = 30.0,
        tally: Tally | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.urls = [u.rstrip("/") for u in ([urls] if isinstance(urls, str) else urls)]
        if not self.urls:
            raise ValueError("no URL to send to")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.tally = tally if tally is not None else Tally()
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.turn = 0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ApiClient used outside `async with`")
        return self._session

    def _url(self, path: str) -> str:
        """The next worker's URL for `path` (round robin)."""
        url = self.urls[self.turn % len(self.urls)] + path
        self.turn += 1
        return url

    async def command(self, path: str, body: dict[str, Any]) -> int | None:
        """POST a command until it is answered other than 503/504, or MAX_ATTEMPTS are
        spent; the final status, or None when no attempt was answered."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        self.tally.sent += 1
        status: int | None = None
        answer = b""
        started = time.monotonic()
        attempt = 0
        refusals: list[str] = []
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            try:
                async with self.session.post(
                    self._url(path), json=body, headers=headers
                ) as response:
                    answer = await response.read()
                    status = response.status
                    wait = retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as error:
                self.tally.errors[type(error).__name__] += 1
                status = None
                answer = type(error).__name__.encode()
            if status is not None and status not in RETRY_STATUSES:
                break
            refusals.append(refusal(status, answer))
            if attempt == self.max_attempts:
                break
            self.tally.retries += 1
            await self.sleep(wait or min(BACKOFF * 2**attempt, MAX_BACKOFF))
        if status is not None:
            self.tally.statuses[status] += 1
        self.tally.finished(
            FinishedCommand(
                path, body, status, answer, started, time.monotonic(), attempt, tuple(refusals)
            )
        )
        return status

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Answer:
        return await self._once("GET", path, params=params)

    async def post(
        self, path: str, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> Answer:
        """One POST, not retried (for requests that are not commands with a key)."""
        return await self._once("POST", path, json=body, params=params)

    async def _once(self, method: str, path: str, **options: Any) -> Answer:
        url = self._url(path)
        try:
            async with self.session.request(method, url, **options) as response:
                return Answer(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError) as error:
            raise Unreachable(f"{method} {url}: {type(error).__name__} {error}".rstrip()) from error
