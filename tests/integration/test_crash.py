"""Crash safety: SIGKILL the worker mid-run, more than once, and lose nothing.

Clients retry with the same Idempotency-Key until they get a definitive
answer, as a real client would. The second restart is on an empty data dir,
so state comes from Kafka alone. Afterwards every balance is what the answers
say, every account's stream has versions 1..n without gap or repeat, and the
read models (balance and the account's event history) equal the event topic.
`CRASH_RUNS=10 make crash-loop` runs it ten times, with the stalled-
append test (the suite runs the first test once).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.accounts import ACCOUNTS
from models.envelope import EventEnvelope
from tests.integration.test_startup import eventually
from tests.system import System, Worker

pytestmark = pytest.mark.integration

ACCOUNTS_N = 20
COMMANDS_N = 300


async def send_until_answered(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str
) -> httpx.Response:
    """POST with one Idempotency-Key, retrying through crashes until a definitive answer."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            response = await client.post(path, json=body, headers={"Idempotency-Key": key})
            if response.status_code < 500:
                return response
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.3)
    raise AssertionError(f"no answer for {key} within 180s")


async def drive(worker: Worker, kills: list[Callable[[], Awaitable[None]]]) -> dict[str, Any]:
    """300 commands over 20 accounts; SIGKILL after each of `kills`, the last restart
    on an empty data dir."""
    rng = random.Random(7)
    expected: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    versions: dict[str, int] = {}
    accepted: dict[str, int] = defaultdict(int)
    async with httpx.AsyncClient(base_url=worker.url, timeout=15.0) as client:
        for n in range(ACCOUNTS_N):
            opened = await send_until_answered(
                client, "/accounts", {"account_id": f"k{n}", "owner": f"O{n}"}, f"open-{n}"
            )
            assert opened.status_code == 201, opened.text
            versions[f"k{n}"] = 1

        gate = asyncio.Semaphore(8)
        locks = {f"k{n}": asyncio.Lock() for n in range(ACCOUNTS_N)}

        async def one(i: int) -> None:
            account = f"k{rng.randrange(ACCOUNTS_N)}"
            kind = "deposits" if rng.random() < 0.6 else "withdrawals"
            amount = Decimal(rng.randrange(1, 5000)) / 100
            async with gate, locks[account]:  # one client per account keeps answers ordered
                response = await send_until_answered(
                    client, f"/accounts/{account}/{kind}", {"amount": str(amount)}, f"cmd-{i}"
                )
            if response.status_code == 201:
                expected[account] += amount if kind == "deposits" else -amount
                versions[account] = max(versions[account], response.json()["version"])
                accepted[account] += 1
            else:
                assert response.status_code == 409, response.text
                assert response.json()["error"] == "insufficient_funds"

        async def killer() -> None:
            for n, moment in enumerate(kills, start=1):
                await moment()
                worker.kill()
                if n == len(kills):  # the last restart: nothing local, all from Kafka
                    shutil.rmtree(worker.datadir, ignore_errors=True)
                await asyncio.sleep(1.0)
                worker.start()

        await asyncio.gather(killer(), *(one(i) for i in range(COMMANDS_N)))
    return {"expected": expected, "versions": versions, "accepted": accepted}


def read_events(system: System) -> list[EventEnvelope]:
    return [EventEnvelope.model_validate_json(raw) for raw in system.read_topic("accounts.events")]


@pytest.mark.parametrize("run", range(int(os.environ.get("CRASH_RUNS", "1"))))
def test_sigkill_twice_during_a_run_loses_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, run: int
) -> None:
    system = System(tmp_path_factory.mktemp("crash"))
    try:
        worker = system.worker().wait_ready()
        outcome = asyncio.run(drive(worker, kills=[after_seconds(3.0), after_seconds(6.0)]))
        check_against_the_log(system, worker, outcome)
    finally:
        system.stop()


@pytest.mark.skipif("CRASH_RUNS" not in os.environ, reason="a soak test: make crash-loop")
@pytest.mark.parametrize("run", range(int(os.environ.get("CRASH_RUNS", "1"))))
def test_a_kill_while_an_append_is_stalled_loses_no_row(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, run: int
) -> None:
    """One partition's append waits 8 s for its ack (a slow broker) while the other
    partitions keep deciding and the read models keep folding; a SIGKILL in the
    middle: every answered command is in the log, every row comes back from it."""
    system = System(tmp_path_factory.mktemp("stall"), SHOP_FAULT="append-unacked:stall:8@150")
    try:
        worker = system.worker().wait_ready()
        stalled = after_log_line(worker, "fault append-unacked: stalling", then=3.0)
        outcome = asyncio.run(drive(worker, kills=[stalled]))
        check_against_the_log(system, worker, outcome)
    finally:
        system.stop()


def after_seconds(seconds: float) -> Callable[[], Awaitable[None]]:
    return lambda: asyncio.sleep(seconds)


def after_log_line(worker: Worker, text: str, then: float) -> Callable[[], Awaitable[None]]:
    async def wait() -> None:
        while text not in worker.log_path.read_text(errors="replace"):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(then)

    return wait


def check_against_the_log(system: System, worker: Worker, outcome: dict[str, Any]) -> None:
    """Balances as answered; versions 1..n; balance and history == the event topic."""
    worker.wait_ready()
    api = httpx.Client(base_url=worker.url, timeout=30.0)
    for account, balance in outcome["expected"].items():
        version = outcome["versions"][account]
        state = eventually(  # through the rebalance that drops the killed worker's member
            lambda a=account, v=version: (
                None
                if (r := api.get(f"/accounts/{a}", params={"min_version": v})).status_code == 503
                else r
            ),
            timeout=60,
        )
        assert state.status_code == 200, state.text
        assert Decimal(state.json()["balance"]) == balance, account
        assert state.json()["version"] == version == outcome["accepted"][account] + 1

    events = read_events(system)
    by_id: dict[str, EventEnvelope] = {}
    for event in events:
        kept = by_id.setdefault(str(event.event_id), event)
        assert kept.payload == event.payload  # a re-published event is the same event
    streams: dict[str, list[EventEnvelope]] = defaultdict(list)
    for event in by_id.values():
        streams[event.aggregate_id].append(event)
    for account, stream in streams.items():
        stream.sort(key=lambda e: e.aggregate_version)
        in_log_order = [
            (e.aggregate_version, str(e.event_id)[:8], e.causation_id, e.payload)
            for e in events
            if e.aggregate_id == account
        ]
        assert [e.aggregate_version for e in stream] == list(range(1, len(stream) + 1)), (
            account,
            in_log_order,
        )
        replayed = ACCOUNTS.replay(account, stream)
        model = api.get(f"/accounts/{account}").json()
        assert (str(replayed.balance), replayed.version) == (model["balance"], model["version"])
        history = api.get(f"/accounts/{account}/events").json()["events"]
        assert [e["event_id"] for e in history] == [str(e.event_id) for e in stream], account
    print(
        f"\n{COMMANDS_N} commands, {len(events)} event records, "
        f"{len(events) - len(by_id)} re-published duplicates"
    )
