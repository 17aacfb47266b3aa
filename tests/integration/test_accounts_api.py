"""The Account API against a real broker and a real worker: the story of one account.

The module's system (one worker, a second one joins at the end) serves most
tests; a second system runs with API_TOKEN set and a short MIN_VERSION_WAIT
for the tests that need other settings. Every test uses its own account ids.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.system import System, Worker

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def api(worker: Worker) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=worker.url, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def guarded_system(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """A system with write endpoints behind a bearer token and a 1 s min_version wait."""
    shop = System(tmp_path_factory.mktemp("guarded"), API_TOKEN=TOKEN, MIN_VERSION_WAIT="1")
    shop.worker()
    yield shop
    shop.stop()


@pytest.fixture(scope="module")
def guarded(guarded_system: System) -> Iterator[httpx.Client]:
    worker = guarded_system.workers[0].wait_ready()
    with httpx.Client(base_url=worker.url, timeout=30.0) as client:
        yield client


def new_id(prefix: str = "acc") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def open_account(api: httpx.Client, balance: str | None = None, owner: str = "Ann") -> str:
    account_id = new_id()
    opened = api.post("/accounts", json={"account_id": account_id, "owner": owner})
    assert opened.status_code == 201, opened.text
    if balance is not None:
        funded = api.post(f"/accounts/{account_id}/deposits", json={"amount": balance})
        assert funded.status_code == 201, funded.text
    return account_id


def fields_of(response: httpx.Response) -> list[str]:
    return [f["field"] for f in response.json()["fields"]]


# --- the happy path ----------------------------------------------------------------------


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


# --- refusals the domain gives -------------------------------------------------------------


def test_an_existing_account_cannot_be_opened_again(api: httpx.Client) -> None:
    account_id = open_account(api, owner="Ann")
    again = api.post("/accounts", json={"account_id": account_id, "owner": "Mallory"})
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "already_exists"
    assert again.json()["version"] == 1
    state = api.get(f"/accounts/{account_id}", params={"min_version": 1}).json()
    assert state["owner"] == "Ann"


@pytest.mark.parametrize("kind", ["deposits", "withdrawals"])
def test_money_cannot_move_on_an_unknown_account(api: httpx.Client, kind: str) -> None:
    ghost = new_id("ghost")
    response = api.post(f"/accounts/{ghost}/{kind}", json={"amount": "1.00"})
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    assert response.json()["version"] == 0


def test_an_unknown_account_is_not_found(api: httpx.Client) -> None:
    ghost = new_id("ghost")
    for path in (f"/accounts/{ghost}", f"/accounts/{ghost}/events"):
        response = api.get(path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"] == "not_found"


def test_an_account_cannot_be_overdrawn_and_says_its_balance(api: httpx.Client) -> None:
    account_id = open_account(api, balance="40.00")
    refused = api.post(f"/accounts/{account_id}/withdrawals", json={"amount": "40.01"})
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error"] == "insufficient_funds"
    assert "40.00" in body["reason"]
    assert body["balance"] == "40.00"
    assert body["details"] == {"balance": "40.00", "amount": "40.01"}
    assert body["version"] == 2 and body["events"] == []
    state = api.get(f"/accounts/{account_id}", params={"min_version": 2}).json()
    assert (state["balance"], state["version"]) == ("40.00", 2)


# --- refusals of what the client sent ---------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        "0",
        "0.00",
        "-5.00",
        0,
        "ten",
        "",
        None,
        10.5,
        1.0,
        "1.001",
        "NaN",
        "Infinity",
        "1000000000.01",
        "1e30",  # once escaped the validator as decimal.InvalidOperation: a 500
        [],
        {"value": "1"},
    ],
)
def test_an_amount_must_be_a_positive_decimal_string(api: httpx.Client, amount: Any) -> None:
    account_id = "alice"  # exists (first test); refusals never reach it anyway
    response = api.post(f"/accounts/{account_id}/deposits", json={"amount": amount})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"
    assert fields_of(response) == ["amount"]
    assert "amount" in response.json()["reason"]


def test_a_missing_amount_is_named(api: httpx.Client) -> None:
    response = api.post("/accounts/alice/withdrawals", json={})
    assert response.status_code == 422 and fields_of(response) == ["amount"]


def test_malformed_json_is_a_bad_request(api: httpx.Client) -> None:
    for body in (b'{"amount": "1.00"', b"amount=1.00", b"\xff\xfe", b"[1, 2]", b'"1.00"'):
        response = api.post(
            "/accounts/alice/deposits", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"] == "malformed_json"


def test_an_unknown_field_is_refused_and_named(api: httpx.Client) -> None:
    response = api.post("/accounts/alice/deposits", json={"amount": "1.00", "currency": "EUR"})
    assert response.status_code == 422, response.text
    assert fields_of(response) == ["currency"]
    opened = api.post("/accounts", json={"account_id": new_id(), "owner": "A", "vip": True})
    assert opened.status_code == 422 and fields_of(opened) == ["vip"]


@pytest.mark.parametrize(
    "account_id",
    ["x" * 65, "has space", "semi;colon", "slash/inside", "-leading-dash", "ümlaut", ""],
)
def test_an_account_id_is_short_and_plain(api: httpx.Client, account_id: str) -> None:
    response = api.post("/accounts", json={"account_id": account_id, "owner": "A"})
    assert response.status_code == 422, response.text
    assert fields_of(response) == ["account_id"]


@pytest.mark.parametrize("account_id", ["x" * 65, "bad!id", "a%20b", "_under", "%C3%BC"])
def test_an_account_id_in_the_path_is_checked(api: httpx.Client, account_id: str) -> None:
    for method, path in (
        ("POST", f"/accounts/{account_id}/deposits"),
        ("POST", f"/accounts/{account_id}/withdrawals"),
        ("GET", f"/accounts/{account_id}"),
        ("GET", f"/accounts/{account_id}/events"),
    ):
        response = api.request(method, path, json={"amount": "1.00"} if method == "POST" else None)
        assert response.status_code == 422, (method, path, response.text)
        assert fields_of(response) == ["account_id"]


def test_a_64_character_id_is_fine(api: httpx.Client) -> None:
    account_id = "k" * 56 + uuid.uuid4().hex[:8]
    assert len(account_id) == 64
    opened = api.post("/accounts", json={"account_id": account_id, "owner": "A"})
    assert opened.status_code == 201, opened.text


@pytest.mark.parametrize("key", ["has space", "x" * 129, "tab\tkey", "ümlaut"])
def test_an_idempotency_key_is_printable_ascii(api: httpx.Client, key: str) -> None:
    response = api.post(
        "/accounts/alice/deposits",
        json={"amount": "1.00"},
        headers={b"Idempotency-Key": key.encode()},
    )
    assert response.status_code == 422, response.text
    assert fields_of(response) == ["Idempotency-Key"]


def test_a_body_over_the_limit_is_refused(api: httpx.Client) -> None:
    big = {"account_id": new_id(), "owner": "A" * (64 * 1024)}
    response = api.post("/accounts", json=big)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "body_too_large"


def test_a_streamed_body_over_the_limit_is_refused(api: httpx.Client) -> None:
    """Without a Content-Length the limit still holds (chunked transfer)."""

    def chunks() -> Iterator[bytes]:
        yield b'{"amount": "1.00", "reference": "'
        for _ in range(80):
            yield b"r" * 1024
        yield b'"}'

    response = api.post("/accounts/alice/deposits", content=chunks())
    assert response.status_code == 413, response.text


def test_a_body_in_several_pieces_is_read_whole(api: httpx.Client) -> None:
    """A valid body that arrives in pieces (chunked, with pauses) is one body."""
    account_id = open_account(api)

    async def send() -> httpx.Response:
        async def pieces() -> Any:
            for piece in (b'{"amount": ', b'"2.50", ', b'"reference": "in pieces"}'):
                yield piece
                await asyncio.sleep(0.2)

        async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30.0) as client:
            return await client.post(f"/accounts/{account_id}/deposits", content=pieces())

    response = asyncio.run(send())
    assert response.status_code == 201, response.text
    assert response.json()["events"][0]["payload"]["amount"] == "2.50"


# --- idempotency ---------------------------------------------------------------------------


def test_a_repeated_command_gets_the_same_answer_and_moves_money_once(api: httpx.Client) -> None:
    account_id = open_account(api, balance="10.00")
    key = {"Idempotency-Key": f"pay-{uuid.uuid4().hex}"}
    path = f"/accounts/{account_id}/deposits"
    first = api.post(path, json={"amount": "5.00"}, headers=key)
    again = api.post(path, json={"amount": "5.00"}, headers=key)
    third = api.post(path, json={"amount": "5.00"}, headers=key)
    assert first.status_code == again.status_code == third.status_code == 201, again.text
    for answer in (again.json(), third.json()):
        assert answer["command_id"] == first.json()["command_id"]
        assert answer["version"] == first.json()["version"] == 3
        assert [e["event_id"] for e in answer["events"]] == [
            e["event_id"] for e in first.json()["events"]
        ]
    state = api.get(f"/accounts/{account_id}", params={"min_version": 3}).json()
    assert (state["balance"], state["version"]) == ("15.00", 3)
    events = api.get(f"/accounts/{account_id}/events").json()["events"]
    assert [e["event_type"] for e in events] == [
        "AccountOpened",
        "MoneyDeposited",
        "MoneyDeposited",
    ]


def test_a_repeated_rejection_is_the_same_rejection(api: httpx.Client) -> None:
    account_id = open_account(api, balance="1.00")
    key = {"Idempotency-Key": f"wd-{uuid.uuid4().hex}"}
    path = f"/accounts/{account_id}/withdrawals"
    first = api.post(path, json={"amount": "2.00"}, headers=key)
    assert first.status_code == 409 and first.json()["error"] == "insufficient_funds"
    # money arrives, but the answer to that command was already given
    assert api.post(f"/accounts/{account_id}/deposits", json={"amount": "5.00"}).status_code == 201
    again = api.post(path, json={"amount": "2.00"}, headers=key)
    assert again.status_code == 409 and again.json() == first.json()


def test_one_key_for_a_different_request_is_refused(api: httpx.Client) -> None:
    account_id = open_account(api, balance="10.00")
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    path = f"/accounts/{account_id}/deposits"
    assert api.post(path, json={"amount": "5.00"}, headers=key).status_code == 201
    other = api.post(path, json={"amount": "6.00"}, headers=key)
    assert other.status_code == 422, other.text
    assert other.json()["error"] == "idempotency_key_reused"
    state = api.get(f"/accounts/{account_id}", params={"min_version": 3}).json()
    assert state["balance"] == "15.00" and state["version"] == 3


def test_an_idempotency_key_belongs_to_one_account(api: httpx.Client) -> None:
    """The same key on two accounts is two commands (keys are scoped to the aggregate)."""
    first, second = open_account(api), open_account(api)
    key = {"Idempotency-Key": f"shared-{uuid.uuid4().hex}"}
    a = api.post(f"/accounts/{first}/deposits", json={"amount": "1.00"}, headers=key)
    b = api.post(f"/accounts/{second}/deposits", json={"amount": "1.00"}, headers=key)
    assert a.status_code == b.status_code == 201
    assert a.json()["command_id"] != b.json()["command_id"]
    assert a.json()["events"][0]["event_id"] != b.json()["events"][0]["event_id"]


# --- optimistic concurrency ----------------------------------------------------------------


def test_if_match_guards_against_a_lost_update(api: httpx.Client) -> None:
    account_id = open_account(api, balance="100.00")  # version 2
    path = f"/accounts/{account_id}/withdrawals"
    stale = api.post(path, json={"amount": "1.00"}, headers={"If-Match": "1"})
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"] == "version_conflict"
    assert stale.json()["details"] == {"expected_version": 1, "actual_version": 2}
    fresh = api.post(path, json={"amount": "1.00"}, headers={"If-Match": '"2"'})
    assert fresh.status_code == 201 and fresh.json()["version"] == 3


def test_expected_version_in_the_body_guards_the_same_way(api: httpx.Client) -> None:
    account_id = open_account(api, balance="100.00")
    path = f"/accounts/{account_id}/deposits"
    stale = api.post(path, json={"amount": "1.00", "expected_version": 5})
    assert stale.status_code == 409
    assert stale.json()["details"] == {"expected_version": 5, "actual_version": 2}
    fresh = api.post(path, json={"amount": "1.00", "expected_version": 2})
    assert fresh.status_code == 201 and fresh.json()["version"] == 3
    # opening with expected version 0 means "only if it does not exist yet"
    again = api.post(
        "/accounts", json={"account_id": account_id, "owner": "B", "expected_version": 0}
    )
    assert again.status_code == 409 and again.json()["error"] == "version_conflict"


@pytest.mark.parametrize("header", ["abc", "-1", "1.5", "W/1"])
def test_if_match_must_be_a_version(api: httpx.Client, header: str) -> None:
    response = api.post(
        "/accounts/alice/deposits", json={"amount": "1.00"}, headers={"If-Match": header}
    )
    assert response.status_code == 422 and fields_of(response) == ["If-Match"]


# --- reading: versions, history, time --------------------------------------------------------


def test_history_and_temporal_queries(api: httpx.Client) -> None:
    account_id = open_account(api, balance="100.00")
    for amount in ("10.00", "20.00"):
        assert (
            api.post(f"/accounts/{account_id}/withdrawals", json={"amount": amount}).status_code
            == 201
        )
    # the history is a read model: ask for it once it has caught up with our writes
    assert api.get(f"/accounts/{account_id}", params={"min_version": 4}).status_code == 200
    history = api.get(f"/accounts/{account_id}/events")
    assert history.status_code == 200
    body = history.json()
    assert body["version"] == 4
    assert [e["aggregate_version"] for e in body["events"]] == [1, 2, 3, 4]
    assert [e["payload"].get("amount") for e in body["events"]] == [
        None,
        "100.00",
        "10.00",
        "20.00",
    ]
    assert len({e["event_id"] for e in body["events"]}) == 4

    for version, balance in ((1, "0.00"), (2, "100.00"), (3, "90.00"), (4, "70.00")):
        state = api.get(f"/accounts/{account_id}", params={"at_version": version}).json()
        assert (state["version"], state["balance"]) == (version, balance)
    beyond = api.get(f"/accounts/{account_id}", params={"at_version": 5})
    assert beyond.status_code == 404 and beyond.json()["version"] == 4

    at_third = body["events"][2]["occurred_at"]
    then = api.get(f"/accounts/{account_id}", params={"as_of": at_third}).json()
    assert (then["version"], then["balance"]) == (3, "90.00")
    before = api.get(f"/accounts/{account_id}", params={"as_of": "2000-01-01T00:00:00Z"})
    assert before.status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"at_version": "0"},
        {"at_version": "x"},
        {"as_of": "yesterday"},
        {"as_of": "2026-01-01T00:00:00"},  # no time zone
        {"at_version": "1", "as_of": "2026-01-01T00:00:00Z"},
        {"min_version": "-1"},
        {"min_version": "abc"},
    ],
)
def test_bad_query_parameters_are_refused(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/accounts/alice", params=params)
    assert response.status_code == 422, response.text


def test_raw_table_endpoints_are_off(api: httpx.Client) -> None:
    for path in (
        "/table/",
        "/table/accounts/",
        "/table/accounts/alice/",
        "/table/account-state/alice/",
    ):
        assert api.get(path).status_code == 404, path


# --- the guarded system: tokens and read-your-writes ----------------------------------------


def test_writes_need_the_bearer_token_when_one_is_set(guarded: httpx.Client) -> None:
    account_id = new_id()
    body = {"account_id": account_id, "owner": "Ann"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = guarded.post("/accounts", json=body, headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert guarded.get(f"/accounts/{account_id}").status_code == 404  # nothing was opened

    auth = {"Authorization": f"Bearer {TOKEN}"}
    opened = guarded.post("/accounts", json=body, headers=auth)
    assert opened.status_code == 201, opened.text
    deposit = guarded.post(f"/accounts/{account_id}/deposits", json={"amount": "3.00"})
    assert deposit.status_code == 401
    deposit = guarded.post(
        f"/accounts/{account_id}/deposits", json={"amount": "3.00"}, headers=auth
    )
    assert deposit.status_code == 201
    # reads stay open
    state = guarded.get(f"/accounts/{account_id}", params={"min_version": 2})
    assert state.status_code == 200 and state.json()["balance"] == "3.00"


def test_a_read_that_cannot_catch_up_says_so(guarded: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    account_id = new_id()
    assert (
        guarded.post(
            "/accounts", json={"account_id": account_id, "owner": "A"}, headers=auth
        ).status_code
        == 201
    )
    now = guarded.get(f"/accounts/{account_id}", params={"min_version": 1})
    assert now.status_code == 200 and now.json()["version"] == 1

    behind = guarded.get(f"/accounts/{account_id}", params={"min_version": 2})
    assert behind.status_code == 503, behind.text
    assert behind.headers["Retry-After"] == "1"
    assert behind.json()["error"] == "behind"
    assert (behind.json()["version"], behind.json()["min_version"]) == (1, 2)

    nothing = guarded.get(f"/accounts/{new_id('ghost')}", params={"min_version": 1})
    assert nothing.status_code == 503 and nothing.json()["version"] == 0


# --- two workers: any worker answers for any account ------------------------------------------


def until_answered(send: Any, deadline: float) -> httpx.Response:
    """Retry through a rebalance (503 not ready, 504 no answer yet) with the same request."""
    while True:
        try:
            response = send()
            if response.status_code not in (503, 504) or time.monotonic() > deadline:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


def test_a_second_worker_serves_every_account_and_commands_apply_once(
    system: System, worker: Worker, api: httpx.Client
) -> None:
    accounts = [open_account(api, balance="50.00") for _ in range(8)]
    second = system.worker().wait_ready()
    worker.wait_ready()
    deadline = time.monotonic() + 90
    with httpx.Client(base_url=second.url, timeout=30.0) as other:
        clients = (api, other)
        # every worker reads every account, whichever owns its partition
        for account_id in [*accounts, "alice"]:
            seen = [
                until_answered(lambda c=c, a=account_id: c.get(f"/accounts/{a}"), deadline)
                for c in clients
            ]
            assert [r.status_code for r in seen] == [200, 200], [r.text for r in seen]
            assert seen[0].json() == seen[1].json()

        # a command goes to either worker; the same command to the other is the same answer
        for n, account_id in enumerate(accounts):
            key = {"Idempotency-Key": f"two-{n}"}
            path = f"/accounts/{account_id}/withdrawals"
            first, repeat = clients[n % 2], clients[(n + 1) % 2]
            answer = until_answered(
                lambda c=first, p=path, k=key: c.post(p, json={"amount": "20.00"}, headers=k),
                deadline,
            )
            again = until_answered(
                lambda c=repeat, p=path, k=key: c.post(p, json={"amount": "20.00"}, headers=k),
                deadline,
            )
            assert answer.status_code == again.status_code == 201, (answer.text, again.text)
            assert answer.json()["version"] == again.json()["version"] == 3
            assert answer.json()["events"] == again.json()["events"]

        for account_id in accounts:
            for client in clients:
                state = until_answered(
                    lambda c=client, a=account_id: c.get(
                        f"/accounts/{a}", params={"min_version": 3}
                    ),
                    deadline,
                )
                assert state.status_code == 200, state.text
                assert (state.json()["balance"], state.json()["version"]) == ("30.00", 3)
            events = until_answered(
                lambda a=account_id: other.get(f"/accounts/{a}/events"), deadline
            )
            assert [e["aggregate_version"] for e in events.json()["events"]] == [1, 2, 3]
