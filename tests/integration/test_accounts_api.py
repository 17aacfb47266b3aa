"""The Account API against a real broker and a real worker: the story of one account."""

from __future__ import annotations

import httpx
import pytest

from tests.system import Worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(worker: Worker) -> httpx.Client:
    return httpx.Client(base_url=worker.url, timeout=30.0)


def test_open_deposit_withdraw_and_read_back(api: httpx.Client) -> None:
    opened = api.post("/accounts", json={"account_id": "alice", "owner": "Alice"})
    assert opened.status_code == 201, opened.text
    assert opened.json()["version"] == 1
    assert opened.json()["events"][0]["event_type"] == "AccountOpened"

    deposit = api.post("/accounts/alice/deposits", json={"amount": "1000.00"})
    assert deposit.status_code == 201 and deposit.json()["version"] == 2
    withdrawal = api.post("/accounts/alice/withdrawals", json={"amount": "50.00"})
    assert withdrawal.status_code == 201 and withdrawal.json()["version"] == 3

    state = api.get("/accounts/alice", params={"min_version": 3})
    assert state.status_code == 200, state.text
    assert state.json()["balance"] == "950.00"
    assert state.json()["version"] == 3

    events = api.get("/accounts/alice/events").json()["events"]
    assert [e["aggregate_version"] for e in events] == [1, 2, 3]
    types = [e["event_type"] for e in events]
    assert types == ["AccountOpened", "MoneyDeposited", "MoneyWithdrawn"]

    then = api.get("/accounts/alice", params={"at_version": 2}).json()
    assert then["balance"] == "1000.00" and then["version"] == 2
    as_of = api.get("/accounts/alice", params={"as_of": events[1]["occurred_at"]}).json()
    assert as_of["balance"] == "1000.00" and as_of["version"] == 2
