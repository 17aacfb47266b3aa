"""Crash safety: SIGKILL the only worker in the middle of a busy run, more than once.

Clients behave as real clients must: every command carries an Idempotency-Key,
and a client that gets no definitive answer (a 5xx, a dropped connection, a
timeout) sends the very same request again until it does. A refusal for lack
of funds is a definitive answer too.

Afterwards the system must tell exactly the story the clients were told:

- every balance is what the answers add up to, at the version they imply;
- the event log (read raw from Kafka, from offset 0) holds, after removing
  re-published copies by event id, versions 1..n per account without gap or
  repeat, and never two different events for one (account, version);
- every event a client was told about is in the log, and nothing else is;
- the read model equals a replay of the log.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from domain.accounts import ACCOUNTS
from models.accounts import AccountView
from models.envelope import EventEnvelope
from tests.system import System, Worker

pytestmark = pytest.mark.integration

ACCOUNTS_N = 20
COMMANDS_N = 300
IN_FLIGHT = 16
KILL_AT = (0.25, 0.6)
"""Kill the worker when this share of the commands has been answered."""
ANSWER_WITHIN = 150.0
"""A client gives up on one command after this long (the test then fails)."""


@dataclass
class Ledger:
    """What the clients were told, and what it took to be told."""

    balance: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    accepted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    versions: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    events: dict[str, tuple[str, int]] = field(default_factory=dict)
    """event id -> (account, version), from every accepted answer."""
    refused: int = 0
    answered: int = 0
    retries: int = 0
    kills: int = 0
    kill_times: list[float] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    """Why a request had to be sent again (status code or error type)."""
    answers: list[dict[str, Any]] = field(default_factory=list)
    """Every definitive answer, for the post-mortem when a check fails."""

    def expected_version(self, account: str) -> int:
        return 1 + self.accepted[account]


async def until_answered(
    client: httpx.AsyncClient, ledger: Ledger, path: str, body: dict[str, Any], key: str
) -> httpx.Response:
    """POST one command, the same request again and again, until a definitive answer."""
    deadline = time.monotonic() + ANSWER_WITHIN
    pause = 0.2
    while True:
        try:
            response = await client.post(path, json=body, headers={"Idempotency-Key": key})
            if response.status_code < 500:
                ledger.answered += 1
                return response
            why = str(response.status_code)
        except httpx.TransportError as error:  # refused, reset, timed out
            why = type(error).__name__
        ledger.retries += 1
        ledger.attempts[why] += 1
        if time.monotonic() > deadline:
            raise AssertionError(f"no definitive answer for {key} within {ANSWER_WITHIN}s")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 1.0)


def record(ledger: Ledger, key: str, account: str, delta: Decimal, answer: httpx.Response) -> None:
    body = answer.json()
    ledger.answers.append(
        {
            "key": key,
            "account": account,
            "delta": str(delta),
            "status": answer.status_code,
            "version": body.get("version"),
            "events": [e["event_id"] for e in body.get("events", [])],
            "at": time.time(),
        }
    )
    if answer.status_code == 201:
        ledger.balance[account] += delta
        ledger.accepted[account] += 1
        ledger.versions[account].append(body["version"])
        for event in body["events"]:
            ledger.events[event["event_id"]] = (account, event["aggregate_version"])
    else:
        # the only refusal a valid request may get here
        assert answer.status_code == 409, answer.text
        assert body["error"] == "insufficient_funds", answer.text
        assert Decimal(body["balance"]) < -delta
        ledger.refused += 1


async def drive(worker: Worker, ledger: Ledger) -> None:
    rng = random.Random(20261128)
    accounts = [f"acct-{n:02d}" for n in range(ACCOUNTS_N)]
    timeout = httpx.Timeout(15.0, connect=3.0)
    limits = httpx.Limits(max_connections=IN_FLIGHT * 2)
    async with httpx.AsyncClient(base_url=worker.url, timeout=timeout, limits=limits) as client:
        for account in accounts:
            body = {"account_id": account, "owner": account.upper()}
            opened = await until_answered(client, ledger, "/accounts", body, f"open-{account}")
            assert opened.status_code == 201, opened.text
            for event in opened.json()["events"]:
                ledger.events[event["event_id"]] = (account, event["aggregate_version"])

        plan = []
        for n in range(COMMANDS_N):
            account = rng.choice(accounts)
            deposit = rng.random() < 0.55
            amount = Decimal(rng.randrange(1, 20_000)) / 100
            plan.append((n, account, deposit, amount))

        gate = asyncio.Semaphore(IN_FLIGHT)
        progress = asyncio.Condition()
        done = 0

        async def one(n: int, account: str, deposit: bool, amount: Decimal) -> None:
            nonlocal done
            kind = "deposits" if deposit else "withdrawals"
            async with gate:
                answer = await until_answered(
                    client, ledger, f"/accounts/{account}/{kind}", {"amount": str(amount)}, f"c{n}"
                )
            record(ledger, f"c{n}", account, amount if deposit else -amount, answer)
            async with progress:
                done += 1
                progress.notify_all()

        async def killer() -> None:
            for share in KILL_AT:
                async with progress:
                    await progress.wait_for(lambda s=share: done >= s * COMMANDS_N)
                await asyncio.to_thread(worker.kill, signal.SIGKILL)
                ledger.kills += 1
                ledger.kill_times.append(time.time())
                await asyncio.sleep(0.5)
                await asyncio.to_thread(worker.restart)

        await asyncio.gather(killer(), *(one(*step) for step in plan))


async def read_log(system: System, topic: str) -> list[EventEnvelope]:
    """Every record of an event topic, from offset 0 to its current end, with a plain consumer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=system.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assert topic in await consumer.topics(), f"no topic {topic}"
        count = int(system.env["SHOP_PARTITIONS"])
        partitions = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[EventEnvelope] = []
        deadline = time.monotonic() + 60
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            assert time.monotonic() < deadline, "could not read the event log to its end"
            batch = await consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                for message in messages:
                    event = EventEnvelope.model_validate_json(message.value)
                    assert message.key == event.aggregate_id.encode()  # keyed by aggregate
                    records.append(event)
        return records
    finally:
        await consumer.stop()


def read_back(api: httpx.Client, account: str, min_version: int) -> dict[str, Any]:
    """The read model once it reflects `min_version` (503 'behind' means ask again)."""
    deadline = time.monotonic() + 60
    while True:
        state = api.get(f"/accounts/{account}", params={"min_version": min_version})
        if state.status_code != 503 or time.monotonic() > deadline:
            assert state.status_code == 200, state.text
            return dict(state.json())
        time.sleep(0.5)


@pytest.fixture
def crash_system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    # a short session timeout: the killed member's partitions move on in seconds
    system = System(tmp_path_factory.mktemp("crash-safety"), KAFKA_SESSION_TIMEOUT="6")
    yield system
    system.stop()


def dump(system: System, ledger: Ledger, log: list[EventEnvelope], models: dict[str, Any]) -> Path:
    """Everything the clients were told and everything the log holds, for a post-mortem."""
    path = system.workdir / "postmortem.json"
    path.write_text(
        json.dumps(
            {
                "kills": ledger.kill_times,
                "answers": ledger.answers,
                "models": models,
                "log": [e.model_dump(mode="json") for e in log],
            },
            indent=1,
        )
    )
    return path


def test_sigkill_mid_run_loses_nothing_and_applies_nothing_twice(crash_system: System) -> None:
    started = time.monotonic()
    worker = crash_system.worker("w1").wait_ready()
    ledger = Ledger()
    asyncio.run(drive(worker, ledger))
    worker.wait_ready()
    driven = time.monotonic() - started

    # collect the facts first: what each client was told, the read model, the raw log
    accounts = sorted({account for account, _ in ledger.events.values()})
    with httpx.Client(base_url=worker.url, timeout=30.0) as api:
        models = {a: read_back(api, a, ledger.expected_version(a)) for a in accounts}
    log = asyncio.run(read_log(crash_system, crash_system.topic("accounts.events")))
    where = dump(crash_system, ledger, log, models)
    print(f"\npost-mortem facts: {where}")

    assert ledger.kills >= 2
    assert ledger.retries > 0, "the kills never hit a request: the test proved nothing"
    assert len(accounts) == ACCOUNTS_N

    # every answer got its own version: versions 2..n, each told to exactly one client
    for account, versions in ledger.versions.items():
        assert sorted(versions) == list(range(2, ledger.expected_version(account) + 1)), account

    # the read model says what the answers say
    for account, state in models.items():
        assert Decimal(state["balance"]) == ledger.balance[account], account
        assert Decimal(state["balance"]) >= 0, account
        assert state["version"] == ledger.expected_version(account), account

    # the event log: deduplicate re-published copies by event id
    unique: dict[str, EventEnvelope] = {}
    for event in log:
        first = unique.setdefault(str(event.event_id), event)
        assert first == event, "a re-published event must be the very same event"
    duplicates = len(log) - len(unique)

    streams: dict[str, list[EventEnvelope]] = defaultdict(list)
    for event in unique.values():
        streams[event.aggregate_id].append(event)
    assert sorted(streams) == accounts

    for account, stream in streams.items():
        stream.sort(key=lambda e: e.aggregate_version)
        versions = [e.aggregate_version for e in stream]
        owners = Counter(versions)
        clashes = {v: n for v, n in owners.items() if n > 1}
        assert not clashes, f"{account}: different events share versions {clashes}"
        assert versions == list(range(1, len(stream) + 1)), f"{account}: gap in {versions}"
        assert stream[0].event_type == "AccountOpened"
        # accepted commands = the events after the opening, one each
        assert len(stream) - 1 == ledger.accepted[account], account

        # the read model is the fold of the log
        replayed = ACCOUNTS.replay(account, stream)
        assert AccountView(**replayed.model_dump()).model_dump(mode="json") == models[account]

    # every event a client was told about is in the log, at the version it was told,
    # and the log holds no event that no client was told about
    told = ledger.events
    assert {str(i): (e.aggregate_id, e.aggregate_version) for i, e in unique.items()} == told

    commands = ACCOUNTS_N + COMMANDS_N
    print(
        f"crash safety: {commands} commands ({sum(ledger.accepted.values())} accepted after "
        f"opening, {ledger.refused} refused for funds), {ledger.kills} SIGKILLs, "
        f"{ledger.retries} client retries {dict(ledger.attempts)}, {len(log)} event records, "
        f"{duplicates} re-published duplicates, {driven:.0f}s to drive, "
        f"{time.monotonic() - started:.0f}s in all"
    )
