"""A read model never loses its place and is never folded past a gap.

The account read models store the offset they reflect with their rows: a store
put back to an older copy resumes from its own offset (not from any consumer
group's commit, long past it) and folds the events in between from the log. A
gap that the log itself has is a dead letter that says so.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from domain.accounts import ACCOUNTS
from models.envelope import EventEnvelope
from tests.integration.test_startup import eventually
from tests.system import System, Worker

pytestmark = pytest.mark.integration


def produce(system: System, topic: str, key: str, value: dict[str, Any] | None) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap)
        await producer.start()
        try:
            raw = None if value is None else json.dumps(value).encode()
            await producer.send_and_wait(topic, raw, key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(send())


def log_of(system: System, account_id: str) -> list[EventEnvelope]:
    raws = system.read_topic("accounts.events")
    events = [EventEnvelope.model_validate_json(raw) for raw in raws]
    mine = (e for e in events if e.aggregate_id == account_id)
    return sorted(mine, key=lambda e: e.aggregate_version)


def test_a_store_behind_the_log_resumes_from_its_own_offset(system: System, worker: Worker) -> None:
    api = httpx.Client(base_url=worker.url, timeout=30.0)
    assert api.post("/accounts", json={"account_id": "gap-1", "owner": "G"}).status_code == 201
    assert api.post("/accounts/gap-1/deposits", json={"amount": "10.00"}).status_code == 201
    assert api.get("/accounts/gap-1", params={"min_version": 2}).json()["version"] == 2
    worker.stop()
    older = worker.datadir.with_name(worker.datadir.name + "-at-2")
    shutil.copytree(worker.datadir / "folds", older)

    worker.start().wait_ready()
    for amount in ("20.00", "30.00"):
        assert api.post("/accounts/gap-1/deposits", json={"amount": amount}).status_code == 201
    eventually(lambda: api.get("/accounts/gap-1").json()["version"] == 4)
    worker.stop()  # the group has committed past version 4; the stores go back to 2
    shutil.rmtree(worker.datadir / "folds")
    shutil.copytree(older, worker.datadir / "folds")

    worker.start().wait_ready()
    deposited = api.post("/accounts/gap-1/deposits", json={"amount": "5.00"})
    assert deposited.status_code == 201 and deposited.json()["version"] == 5
    truth = ACCOUNTS.replay("gap-1", log_of(system, "gap-1"))
    row = eventually(lambda: (r := api.get("/accounts/gap-1").json())["version"] == 5 and r)
    assert (row["balance"], row["version"]) == (str(truth.balance), 5) == ("65.00", 5)
    history = api.get("/accounts/gap-1/events").json()["events"]
    assert [e["aggregate_version"] for e in history] == [1, 2, 3, 4, 5]
    assert system.read_topic("deadletters", partitions=1) == []


def test_a_gap_in_the_log_itself_is_a_dead_letter_that_says_so(
    system: System, worker: Worker
) -> None:
    api = httpx.Client(base_url=worker.url, timeout=30.0)
    assert api.post("/accounts", json={"account_id": "gap-2", "owner": "G"}).status_code == 201
    opened = log_of(system, "gap-2")[0]
    orphan = opened.model_copy(update={"event_id": uuid.uuid4(), "aggregate_version": 3})
    produce(system, system.topic("accounts.events"), "gap-2", orphan.model_dump(mode="json"))

    def letter() -> Any:
        letters = api.get("/ops/dead-letters").json()["dead_letters"]
        return next((d for d in letters if d["agent"] == "accounts-projection"), None)

    found = eventually(letter, timeout=60)
    assert found["error_type"] == "GapInLog"
    assert "lacks versions [2]" in found["error"]
    assert api.get("/accounts/gap-2").json()["version"] == 1
