"""Past capacity the API says "no" at once instead of "maybe" after the timeout.

A worker whose handler stalls (a slow broker) has commands piling up; beyond
COMMAND_MAX_IN_FLIGHT a POST is answered 503 `overloaded` with Retry-After at
once, and that command was never sent: only the admitted ones are applied.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.system import System

pytestmark = pytest.mark.integration


def test_commands_past_the_in_flight_bound_are_refused_at_once_and_never_applied(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # the second batch's append (the first deposit) stalls 4 s: the next commands wait behind it
    system = System(tmp_path, SHOP_FAULT="append-unacked:stall:4@2", COMMAND_MAX_IN_FLIGHT="4")
    try:
        worker = system.worker().wait_ready()
        api = httpx.Client(base_url=worker.url, timeout=30.0)
        assert api.post("/accounts", json={"account_id": "busy", "owner": "B"}).status_code == 201

        async def burst() -> list[tuple[int, float, str]]:
            async with httpx.AsyncClient(base_url=worker.url, timeout=30.0) as client:

                async def one(n: int) -> tuple[int, float, str]:
                    await asyncio.sleep(0.05 * n)  # in order: the first ones are admitted
                    started = time.monotonic()
                    response = await client.post(
                        "/accounts/busy/deposits",
                        json={"amount": "1.00"},
                        headers={"Idempotency-Key": f"burst-{n}"},
                    )
                    retry_after = response.headers.get("Retry-After", "")
                    return response.status_code, time.monotonic() - started, retry_after

                return list(await asyncio.gather(*(one(n) for n in range(8))))

        answers = asyncio.run(burst())
        admitted = [a for a in answers if a[0] == 201]
        refused = [a for a in answers if a[0] == 503]
        assert len(admitted) == 4 and len(refused) == 4, answers
        assert all(seconds < 1.0 and after == "1" for _, seconds, after in refused), refused
        account = api.get("/accounts/busy", params={"min_version": 5}).json()
        assert (account["version"], account["balance"]) == (5, "4.00")
    finally:
        system.stop()
