"""Warm standbys: a worker killed for good is replaced by one that kept its partitions'
stores folded, so the takeover folds the log's tail only.

Two workers with SHOP_STANDBY_REPLICAS=1 (the default): each stands by for the
other's partitions. Accounts with deposits are written to w2's partitions; w1's
standby stores of them reach the log's end (`/ops/lag`, `standby` rows) while w2
owns them. w2 is SIGKILLed and stays down: until the session timeout, w1 answers a
read of its partitions that allows it (`max_standby_lag`) from the standby, and 503
to one that does not; then w1 owns every partition, its command sides fold none of
w2's partitions from the start (their catch-up log lines would say so), and it
answers reads and commands of those accounts. About 20 s: two workers start, and the
group waits out the 10 s session timeout of the dead one.
"""

from __future__ import annotations

import re
import signal
from typing import Any

import httpx
import pytest

from agents.engine import key_in_partition
from tests.integration.test_failover import PARTITIONS, owned, split
from tests.integration.test_startup import eventually, post
from tests.system import System, Worker

pytestmark = pytest.mark.integration

DEPOSITS = 3


def standby_rows(worker: Worker, reader: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{worker.url}/ops/lag", timeout=10.0).json()
    return [row for row in body["readers"][reader] if row["standby"]]


def test_a_worker_killed_for_good_is_replaced_from_warm_standbys(
    kafka_bootstrap: str, tmp_path_factory: Any
) -> None:
    system = System(tmp_path_factory.mktemp("standbys"), SHOP_STANDBY_REPLICAS="1")
    try:
        w1 = system.worker().wait_ready(timeout=240)
        w2 = system.worker().wait_ready(timeout=240)
        _, theirs = split(w1, w2)
        api = httpx.Client(base_url=w1.url, timeout=60.0)
        accounts = {p: key_in_partition(p) for p in theirs}
        for partition, account in accounts.items():
            post(api, "/accounts", {"account_id": account, "owner": f"p{partition}"})
            for _ in range(DEPOSITS):
                post(api, f"/accounts/{account}/deposits", {"amount": "2.00"})

        def warm() -> bool:
            rows = standby_rows(w1, "accounts-projection")
            ends = {row["partition"]: row for row in rows}
            return set(ends) == set(theirs) and all(
                row["end"] and row["offset"] == row["end"] for row in ends.values()
            )

        eventually(warm, timeout=60)  # w1's stores of w2's partitions are at the log's end
        assert re.search(r"account-commands: deciding partitions .*standing by for", w1.tail(400))

        w2.kill(signal.SIGKILL)
        # until the group gives w1 the dead worker's partitions (the session timeout), a
        # read w1 cannot route is answered from its standby when the client allows it
        account = next(iter(accounts.values()))
        refused = httpx.get(f"{w1.url}/accounts/{account}", timeout=10.0)
        from_standby = httpx.get(
            f"{w1.url}/accounts/{account}", params={"max_standby_lag": 0}, timeout=10.0
        )
        assert owned(w1) != list(range(PARTITIONS)), "taken over already: nothing was shown"
        assert refused.status_code == 503, refused.text
        assert from_standby.status_code == 200, from_standby.text
        assert from_standby.json()["balance"] == "6.00"
        assert from_standby.headers["Shop-Standby-Lag"] == "0"

        eventually(lambda: owned(w1) == list(range(PARTITIONS)), timeout=90)

        def read(account: str) -> dict[str, Any] | None:
            response = httpx.get(f"{w1.url}/accounts/{account}", timeout=10.0)
            return response.json() if response.status_code == 200 else None

        for partition, account in accounts.items():
            balance = eventually(lambda a=account: read(a), timeout=30)
            assert balance["balance"] == "6.00", (partition, balance)
            deposited = post(api, f"/accounts/{account}/deposits", {"amount": "1.00"})
            assert deposited["version"] == DEPOSITS + 2
        refolded = [
            p
            for p in theirs
            if re.search(rf"account-commands: partition {p} folded \d+ events", w1.tail(2000))
        ]
        assert refolded == [], f"w1 folded these partitions from the start: {refolded}"
        assert standby_rows(w1, "accounts-projection") == []  # it owns them all now
    finally:
        system.stop()
