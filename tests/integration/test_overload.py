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


def test_new_orders_wait_while_the_saga_carries_its_bound_and_get_in_once_one_ships(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # the saga's first dispatch (order A's payment) stalls 6 s: A stays under way
    system = System(tmp_path, SHOP_FAULT="dispatch:stall:6", SAGA_MAX_OPEN_ORDERS="1")
    try:
        worker = system.worker().wait_ready()
        api = httpx.Client(base_url=worker.url, timeout=30.0)
        assert api.post("/accounts", json={"account_id": "cap", "owner": "C"}).status_code == 201
        assert api.post("/accounts/cap/deposits", json={"amount": "50.00"}).status_code == 201
        assert api.post("/products/CAP-1/stock", json={"quantity": 5}).status_code == 201
        line = {"sku": "CAP-1", "quantity": 1, "unit_price": "5.00"}

        def place(order_id: str) -> httpx.Response:
            body = {"order_id": order_id, "customer_id": "cap", "lines": [line]}
            return api.post("/orders", json=body)

        assert place("cap-a").status_code == 202
        refused = place("cap-b")
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "saga_busy"
        assert refused.headers["Retry-After"] == "1"
        assert api.get("/orders/cap-b").status_code == 404  # refused: nothing was placed

        deadline = time.monotonic() + 30
        while api.get("/orders/cap-a").json().get("status") != "shipped":
            assert time.monotonic() < deadline, "order A never shipped"
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while (admitted := place("cap-b")).status_code == 503 and time.monotonic() < deadline:
            time.sleep(float(admitted.headers["Retry-After"]) / 4)
        assert admitted.status_code == 202, admitted.text
    finally:
        system.stop()
