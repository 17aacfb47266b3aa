"""The account read models never lose their place: SIGKILL at each point of the fold path.

20k account events (and three records that can never decode) are produced
straight to `accounts.events` while the worker folds them in small batches; a
named fault point kills it mid-projection. It is restarted on its own data dir,
then once more on an empty one (the stores refold from offset 0: the event topic
is their changelog). Each time, every account's state and history must equal the
fold of the topic read straight from Kafka, and exactly the three bad records
are dead letters. `make soak-read` runs every point SOAK_RUNS times (default 10);
the suite runs the mid-batch kill once (each run takes a minute or more).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from collections import defaultdict
from typing import Any

import httpx
import pytest

from bench.accounts import make_events, produce
from domain.accounts import ACCOUNTS
from models.envelope import EventEnvelope
from tests.integration.test_startup import eventually
from tests.system import System, Worker

pytestmark = pytest.mark.integration

EVENTS = 20_000
ACCOUNTS_N = 400
POISON = [b"\x00not json", b'{"event_type": "MoneyDeposited"}', b"\xff\xfe"]
SOAK = "SOAK_RUNS" in os.environ
RUNS = int(os.environ.get("SOAK_RUNS", "1"))
KILLS = ("fold-batch@7", "fold-written@7") if SOAK else ("fold-batch@7",)
"""Where and at which hit a worker is killed mid-projection (and `fold-revoke`, below)."""


def fold_of_the_log(system: System) -> dict[str, dict[str, Any]]:
    """Per account: the state the decider folds from accounts.events, and its versions."""
    streams: dict[str, list[EventEnvelope]] = defaultdict(list)
    for raw in system.read_topic("accounts.events"):
        try:
            envelope = EventEnvelope.model_validate_json(raw)
        except ValueError:
            continue  # the poison records
        streams[envelope.aggregate_id].append(envelope)
    truth = {}
    for account_id, events in streams.items():
        events.sort(key=lambda e: e.aggregate_version)
        state = ACCOUNTS.replay(account_id, events)
        truth[account_id] = {
            "balance": str(state.balance),
            "version": state.version,
            "versions": [e.aggregate_version for e in events],
        }
    return truth


def shown(api: httpx.Client, account_id: str) -> dict[str, Any] | None:
    state = api.get(f"/accounts/{account_id}")
    history = api.get(f"/accounts/{account_id}/events")
    if state.status_code != 200 or history.status_code != 200:
        return None
    return {
        "balance": state.json()["balance"],
        "version": state.json()["version"],
        "versions": [e["aggregate_version"] for e in history.json()["events"]],
    }


def read_models_equal_the_log(api: httpx.Client, truth: dict[str, dict[str, Any]]) -> None:
    def check() -> Any:
        return all(shown(api, a) == want for a, want in truth.items()) or None

    eventually(check, timeout=180, every=1.0)


def dead_letters_are_the_poison(api: httpx.Client, system: System) -> None:
    def letters() -> Any:
        found = api.get("/ops/dead-letters").json()["dead_letters"]
        mine = [d for d in found if d["agent"] == "accounts-projection"]
        return len(mine) >= len(POISON) and mine

    found = eventually(letters, timeout=60)
    assert len({d["id"] for d in found}) == len(found) == len(POISON)
    assert {d["error_type"] for d in found} <= {"ValidationError"}


def produce_events(system: System) -> None:
    work = make_events(EVENTS, ACCOUNTS_N, uuid.uuid4().hex[:6])
    records = list(work.records)
    for n, poison in enumerate(POISON):  # spread through the stream
        records.insert((n + 1) * len(records) // 4, (f"poison-{n}".encode(), poison))
    asyncio.run(produce(system.bootstrap, system.topic("accounts.events"), records))


def killed(worker: Worker) -> bool:
    return worker.process is not None and worker.process.poll() == -signal.SIGKILL


@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("fault", KILLS)
def test_a_kill_mid_fold_loses_and_repeats_nothing(
    fault: str, run: int, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    point, _, hit = fault.partition("@")
    system = System(
        tmp_path_factory.mktemp("fold"),
        SHOP_FAULT=f"{point}:kill@{hit}",
        FOLD_MAX_BATCH="300",
    )
    try:
        worker = system.worker().wait_ready(timeout=240)
        produce_events(system)
        eventually(lambda: killed(worker), timeout=120)
        assert f"fault {point}: SIGKILL" in worker.tail(200)

        system.env.pop("SHOP_FAULT")
        worker.start().wait_ready(timeout=240)  # its own data dir: resumes from its offsets
        api = httpx.Client(base_url=worker.url, timeout=30.0)
        truth = fold_of_the_log(system)
        assert len(truth) == ACCOUNTS_N
        read_models_equal_the_log(api, truth)
        dead_letters_are_the_poison(api, system)

        worker.kill()
        shutil.rmtree(worker.datadir)  # an empty disk: everything from the log
        worker.start().wait_ready(timeout=240)
        read_models_equal_the_log(api, truth)
    finally:
        system.stop()


@pytest.mark.skipif(not SOAK, reason="a soak test: make soak-read")
@pytest.mark.parametrize("run", range(RUNS))
def test_a_kill_at_revoke_leaves_the_partitions_to_the_other_worker(
    run: int, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    system = System(tmp_path_factory.mktemp("revoke"), FOLD_MAX_BATCH="300")
    try:
        system.env["SHOP_FAULT"] = "fold-revoke:kill@1"  # the first worker's first revoke
        first = system.worker("w1").wait_ready(timeout=240)
        produce_events(system)
        system.env.pop("SHOP_FAULT")
        second = system.worker("w2").wait_ready(timeout=240)  # the rebalance kills w1
        eventually(lambda: killed(first), timeout=120)
        assert "fault fold-revoke: SIGKILL" in first.tail(200)

        api = httpx.Client(base_url=second.url, timeout=30.0)
        truth = fold_of_the_log(system)
        read_models_equal_the_log(api, truth)  # w2 folds every partition from 0

        first.start().wait_ready(timeout=240)  # back with its stores: resumes from their offsets
        read_models_equal_the_log(api, truth)
        read_models_equal_the_log(httpx.Client(base_url=first.url, timeout=30.0), truth)
        dead_letters_are_the_poison(api, system)
    finally:
        system.stop()
