"""The order and analytics read models never lose their place: SIGKILL the folds mid-batch.

The order fold writes each change to its per-customer and per-status indexes in
the same write as the order, and the facts fold sends each batch's facts to the
analytics windows before it stores its offset. Orders flow through the saga while a
fault point kills the worker with messages handed to the producer but not
acknowledged (`fold-unacked`), acknowledged with the rows not yet written
(`fold-sent`), or just after a batch's rows and offsets were written
(`fold-written`). After a restart on its own data dir, then on an empty one
(orders by id and their indexes refold from orders.events, the
windows from analytics.facts), every order is final, both views agree with the
orders, each order listed once, in its own status only, and every analytics
window equals a brute-force count of orders.events and payments.events read
straight from Kafka. A soak test: `make soak-read` (SOAK_RUNS times).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import httpx
import pytest

from tests.integration.test_analytics import settled
from tests.integration.test_fold_crash import killed
from tests.integration.test_order_saga import (
    customer,
    customer_orders,
    eventually,
    final_order,
    orders_in_status,
    stock,
)
from tests.system import System

pytestmark = pytest.mark.integration

SOAK = "SOAK_RUNS" in os.environ
RUNS = int(os.environ.get("SOAK_RUNS", "1"))
BUYERS = [f"view-buyer-{n}" for n in range(4)]
ORDERS_N = 40


def views_agree(api: httpx.Client, finals: dict[str, dict[str, Any]]) -> None:
    for name in BUYERS:
        mine = {o: f["status"] for o, f in finals.items() if f["customer_id"] == name}
        eventually(
            lambda who=name, want=mine: (
                {o["order_id"]: o["status"] for o in customer_orders(api, who)} == want
            ),
            timeout=120,
        )
    for status in ("pending", "paid", "reserved", "shipped", "cancelled"):
        want = {o for o, f in finals.items() if f["status"] == status}
        eventually(
            lambda s=status, w=want: (
                {o["order_id"] for o in orders_in_status(api, s)} & set(finals) == w
            ),
            timeout=120,
        )


@pytest.mark.skipif(not SOAK, reason="a soak test: make soak-read")
@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("point", ["fold-unacked", "fold-sent", "fold-written"])
def test_a_kill_mid_feed_leaves_both_order_views_equal_to_the_orders(
    point: str, run: int, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    system = System(
        tmp_path_factory.mktemp("views"),
        ANALYTICS_GRACE_SECONDS="900",  # restarts take a while: no fact may count as late
    )
    try:
        worker = system.worker().wait_ready(timeout=240)
        api = httpx.Client(base_url=worker.url, timeout=30.0)
        for name in BUYERS:
            customer(api, name, "1000.00")
        stock(api, "VIEW-SKU", 1000)
        worker.stop()  # the fault is armed for the orders only
        system.env["SHOP_FAULT"] = f"{point}:kill@4"
        worker.start().wait_ready(timeout=240)
        bodies: list[dict[str, Any]] = [
            {
                "order_id": f"view-{n}",
                "customer_id": BUYERS[n % len(BUYERS)],
                "lines": [{"sku": "VIEW-SKU", "quantity": 1, "unit_price": "2.00"}],
            }
            for n in range(ORDERS_N)
        ]
        for body in bodies:  # the worker dies somewhere in here: retry as a client would
            while True:
                try:
                    if api.post("/orders", json=body).status_code in (202, 409):
                        break
                except httpx.HTTPError:
                    pass
                if killed(worker):
                    system.env.pop("SHOP_FAULT", None)
                    worker.start().wait_ready(timeout=240)
        if not killed(worker) and "SHOP_FAULT" in system.env:
            eventually(lambda: killed(worker), timeout=60)
            system.env.pop("SHOP_FAULT")
            worker.start().wait_ready(timeout=240)
        assert f"fault {point}: SIGKILL" in worker.log_path.read_text(errors="replace")

        finals = {str(b["order_id"]): final_order(api, str(b["order_id"])) for b in bodies}
        assert {f["status"] for f in finals.values()} == {"shipped"}
        views_agree(api, finals)
        assert settled(system, api, "1m", 60) is True

        worker.kill()
        shutil.rmtree(worker.datadir)  # everything from the log
        worker.start().wait_ready(timeout=240)
        assert {o: final_order(api, o) for o in finals} == finals
        views_agree(api, finals)
        assert settled(system, api, "1m", 60) is True
        assert settled(system, api, "10s", 10) is True
    finally:
        system.stop()
