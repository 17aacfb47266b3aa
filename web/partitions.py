"""Reads that need every partition: each owner asked once, the answers merged.

An index kept per partition (a customer's orders, the orders in a status:
tables/orders.py) is read on every partition. The worker that takes the request
reads the partitions it owns itself, and asks every other owner once for its
share: the same request with `partitions=` naming them, which that owner serves
from its own stores only. Each share comes back in order id order; the shares
are merged. A partition whose owner is not known, not reachable, or not caught
up with its log makes the read 503 `not_ready`, never a partial answer.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Any, cast

from aiohttp import ClientError, ClientTimeout
from faust.web import Request
from yarl import URL

from agents.engine import key_in_partition
from app.main import app
from app.readiness import RECOVERING, serves_reads
from app.settings import settings
from tables.owners import owners
from web.http import HttpError, not_ready
from web.operations import Param

ASK_TIMEOUT = 5.0
"""Longest an owner may take to answer for its partitions."""

PARTITIONS = Param(
    "partitions",
    "query",
    {"type": "string", "pattern": "^[0-9]{1,4}(,[0-9]{1,4}){0,1023}$"},
    "Only these partitions (comma separated), read here: how the worker that takes the "
    "request asks the other owners for their share.",
)

Rows = list[dict[str, Any]]


def same_node(url: URL) -> bool:
    own = URL(str(app.conf.canonical_url))
    return (url.host, url.port) == (own.host, own.port)


def asked_partitions(request: Request) -> list[int] | None:
    """The `partitions=` of a request from a gathering worker; None on a client's request."""
    raw = request.query.get("partitions")
    if raw is None:
        return None
    try:
        wanted = sorted({int(part) for part in raw.split(",")})
    except ValueError:
        wanted = [-1]
    if not wanted or wanted[0] < 0 or wanted[-1] >= settings.partitions:
        raise HttpError(
            422,
            "invalid_request",
            "invalid partitions",
            fields=[
                {
                    "field": "partitions",
                    "reason": f"comma-separated partitions 0-{settings.partitions - 1}",
                }
            ],
        )
    return wanted


async def gathered(
    request: Request, read: Callable[[list[int]], Rows], key: str = "order_id"
) -> Rows:
    """Every partition's rows in `key` order: those of the partitions asked for (a peer's
    request), else of all of them, read here or asked of their owners."""
    asked = asked_partitions(request)
    if asked is not None:
        return read(asked)
    if not serves_reads(app):
        raise not_ready(RECOVERING)
    here: list[int] = []
    elsewhere: dict[URL, list[int]] = {}
    for partition in range(settings.partitions):
        try:
            owner = app.router.key_store(owners.name, key_in_partition(partition).encode())
        except KeyError:
            raise not_ready(f"the owner of partition {partition} is not known yet") from None
        if same_node(owner):
            here.append(partition)
        else:
            elsewhere.setdefault(owner, []).append(partition)
    shares = [read(here)] if here else []
    shares += await asyncio.gather(
        *(_ask(owner, request, partitions) for owner, partitions in elsewhere.items())
    )
    return list(heapq.merge(*shares, key=lambda row: row[key]))


async def _ask(owner: URL, request: Request, partitions: list[int]) -> Rows:
    query = {**request.query, "partitions": ",".join(map(str, partitions))}
    url = owner.with_path(request.url.path).with_query(query)
    try:
        async with app.http_client.get(url, timeout=ClientTimeout(total=ASK_TIMEOUT)) as answer:
            if answer.status != 200:
                raise not_ready(f"the owner of partitions {partitions} answered {answer.status}")
            return cast(Rows, (await answer.json())["orders"])
    except (ClientError, TimeoutError) as error:
        raise not_ready(f"the owner of partitions {partitions} is not reachable") from error
