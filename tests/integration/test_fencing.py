"""A zombie writer: a worker frozen past its session wakes up with a command to decide.

Worker A owns every partition, is SIGSTOPped past its session timeout, and
worker B takes the partitions over and appends to the account. A request sent
to A while it was frozen waits in its socket; on SIGCONT, A may still believe
it owns the partition and decide on its stale state. Either way, the offsets
fence it: its answer is the log's, the account's log read straight from Kafka
folds (first record of each version wins) to what both workers' read models
show, and the zombie's losing record, if it appended one, is folded nowhere.
The suite runs it once; `make kill-matrix` runs it KILL_RUNS times. In every run
so far the zombie did append (a version B had taken), and was fenced.
"""

from __future__ import annotations

import os
import signal
import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.accounts import ACCOUNTS
from models.envelope import EventEnvelope
from tests.integration.test_order_saga import eventually
from tests.system import System

pytestmark = pytest.mark.integration

RUNS = int(os.environ.get("KILL_RUNS", "0"))


def first_of_each_version(events: list[EventEnvelope]) -> list[EventEnvelope]:
    kept: dict[int, EventEnvelope] = {}
    for event in events:  # log order: a later record of a version lost the race
        kept.setdefault(event.aggregate_version, event)
    return [kept[v] for v in sorted(kept)]


@pytest.mark.parametrize("run", range(max(RUNS, 1)))
def test_a_frozen_owner_that_wakes_up_is_fenced_by_the_offsets(
    run: int, kafka_bootstrap: str, tmp_path_factory: Any
) -> None:
    system = System(tmp_path_factory.mktemp("zombie"), KAFKA_SESSION_TIMEOUT="6")
    try:
        a = system.worker().wait_ready(timeout=240)
        api_a = httpx.Client(base_url=a.url, timeout=60.0)
        assert api_a.post("/accounts", json={"account_id": "zed", "owner": "Z"}).status_code == 201
        assert api_a.post("/accounts/zed/deposits", json={"amount": "100.00"}).status_code == 201
        assert a.process is not None
        a.process.send_signal(signal.SIGSTOP)
        answers: dict[str, Any] = {}
        try:
            b = system.worker().wait_ready(timeout=240)
            api_b = httpx.Client(base_url=b.url, timeout=60.0)
            eventually(
                lambda: (
                    (r := api_b.get("/accounts/zed")).status_code == 200
                    and r.json()["version"] == 2
                ),
                timeout=120,
            )

            def to_the_zombie() -> None:  # waits in A's socket until it wakes up
                response = api_a.post(
                    "/accounts/zed/deposits",
                    json={"amount": "1.00"},
                    headers={"Idempotency-Key": "zombie"},
                )
                answers["zombie"] = (response.status_code, response.json())

            frozen = threading.Thread(target=to_the_zombie, daemon=True)
            frozen.start()
            for n in range(2):
                deposit = api_b.post(
                    "/accounts/zed/deposits",
                    json={"amount": "10.00"},
                    headers={"Idempotency-Key": f"owner-{n}"},
                )
                assert deposit.status_code == 201, deposit.text
        finally:
            a.process.send_signal(signal.SIGCONT)
        frozen.join(timeout=120)
        status, body = answers["zombie"]
        if status in (503, 504):  # told to retry: the same key, as a client would
            retried = api_b.post(
                "/accounts/zed/deposits",
                json={"amount": "1.00"},
                headers={"Idempotency-Key": "zombie"},
            )
            status, body = retried.status_code, retried.json()
        assert status == 201, body

        events = [
            e
            for e in (
                EventEnvelope.model_validate_json(r) for r in system.read_topic("accounts.events")
            )
            if e.aggregate_id == "zed"
        ]
        kept = first_of_each_version(events)
        assert [e.aggregate_version for e in kept] == list(range(1, len(kept) + 1))
        folded = ACCOUNTS.replay("zed", kept)
        assert folded.balance == Decimal("121.00") and folded.version == 5
        mine = [
            e
            for e in kept
            if e.event_id == EventEnvelope.model_validate(body["events"][0]).event_id
        ]
        assert [e.aggregate_version for e in mine] == [body["version"]]  # its answer is the log's
        print(
            f"records of zed in the log: {len(events)}, losing records: {len(events) - len(kept)}"
        )
        for api in (api_a, api_b):
            row = eventually(
                lambda c=api: (
                    (r := c.get("/accounts/zed", params={"min_version": 5})).status_code == 200
                    and r.json()
                ),
                timeout=120,
            )
            assert (Decimal(row["balance"]), row["version"]) == (folded.balance, 5)
    finally:
        system.stop()
