"""Peers: the same account fold by this project's worker, raw aiokafka and Quix Streams.

    python -m bench.peers [--events 500000] [--accounts 1000] [--profile FILE]

In one run, on the shared broker, on ONE topic:

1. an isolated copy of the system (`bench.local_shop.System`, 8 partitions) starts a
   worker once (it creates the topics) and stops it; N account events are produced to
   its `accounts.events` with `bench.accounts.make_events` (JSON `EventEnvelope`s
   keyed by account id);
2. the same N events are folded from the beginning into two read models: per account
   the balance and version, and every event by version:
   a. the project: the worker starts on an empty data dir, so its batched fold
      (agents/folds.py) refolds every partition from offset 0, i.e. a rebuild from
      the log; timed from its first progress report to the last (bench/project_fold.py),
      then 1000 accounts are checked over HTTP; its CPU per event and RSS are printed;
   b. raw aiokafka: no group, all partitions assigned, `getmany` + orjson (json if
      orjson is missing) + the fold into dicts in memory;
   c. Quix Streams: an `Application` (own consumer group, earliest, RocksDB state with
      changelog in a temp dir), `StreamingDataFrame.apply(..., stateful=True)` folding
      into its state: `state.set("account", {balance, version})` and
      `state.set(f"v{version}", event)`, stopped by `app.stop()` after the N-th event;
3. print events/s (first record -> last record) and the ratios.

The topics, Quix's changelog topic(s) and its consumer group are deleted at the end.
Needs the `bench` extra (`pip install -e .[bench]`, in its own venv: Quix Streams pins
pydantic below 2.14; `make bench-peers` builds `.venv-bench`). Without Quix Streams
the other two run. Figures come from one run on a shared machine: compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from bench.accounts import Expected, make_events, partitions_of, produce
from bench.local_shop import System, bootstrap_servers
from bench.project_fold import ProjectRun, Rebuild, rebuild_accounts, refold

PARTITIONS = 8
FOLD_TIMEOUT = 900.0
"""Seconds a fold may take before the bench gives up."""


def json_loads() -> Callable[[bytes], Any]:
    """orjson.loads when installed (the `bench` extra), else the standard library's."""
    try:
        import orjson
    except ImportError:
        return json.loads
    return orjson.loads


def version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


# --- the fold, shared by both peers --------------------------------------------------------


def evolve(balance: Decimal, event: dict[str, Any]) -> Decimal:
    """The new balance after one account event; money is Decimal, parsed from its string."""
    kind = event["event_type"]
    if kind == "MoneyDeposited":
        return balance + Decimal(event["payload"]["amount"])
    if kind == "MoneyWithdrawn":
        return balance - Decimal(event["payload"]["amount"])
    if kind == "AccountOpened":
        return balance
    raise ValueError(f"unknown event type {kind!r}")


@dataclass
class FoldRun:
    events: int
    first_to_last_s: float
    total_s: float
    """From starting the consumer (raw) or `app.run()` (Quix) until it returned."""
    cpu_s: float
    mismatches: int

    @property
    def rate(self) -> float:
        return self.events / self.first_to_last_s if self.first_to_last_s > 0 else float("nan")


def check(balances: dict[str, tuple[Decimal, int]], expected: dict[str, Expected]) -> int:
    return sum(
        1
        for account, want in expected.items()
        if balances.get(account) != (want.balance, want.version)
    )


# --- a. raw aiokafka ----------------------------------------------------------------------


async def fold_raw(bootstrap: str, topic: str, n: int, expected: dict[str, Expected]) -> FoldRun:
    loads = json_loads()
    balances: dict[str, tuple[Decimal, int]] = {}
    events: dict[str, dict[str, Any]] = {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    started, cpu = time.perf_counter(), time.process_time()
    await consumer.start()
    try:
        tps = await partitions_of(bootstrap, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        first = last = 0.0
        deadline = time.perf_counter() + FOLD_TIMEOUT
        while seen < n:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"raw fold: {seen}/{n} in {FOLD_TIMEOUT:.0f} s")
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if batch and not first:
                first = time.perf_counter()
            for records in batch.values():
                for record in records:
                    assert record.value is not None
                    event = loads(record.value)
                    account: str = event["aggregate_id"]
                    version: int = event["aggregate_version"]
                    balance, _ = balances.get(account, (Decimal("0.00"), 0))
                    balances[account] = (evolve(balance, event), version)
                    events[f"{account}/{version}"] = event
                seen += len(records)
        last = time.perf_counter()
    finally:
        await consumer.stop()
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    if len(events) != n:
        raise RuntimeError(f"raw fold: {len(events)} distinct events, want {n}")
    return FoldRun(seen, last - first, total, cpu, check(balances, expected))


# --- b. Quix Streams ----------------------------------------------------------------------


def fold_quix(
    bootstrap: str, topic: str, group: str, n: int, expected: dict[str, Expected]
) -> FoldRun | None:
    """Fold the topic with a Quix Streams Application (main thread: it installs signal handlers)."""
    try:
        # record=True swallows a dependency's import-time deprecation notice (authlib
        # forces its own "always" filter, so a plain "ignore" does not hold)
        with warnings.catch_warnings(record=True):
            from quixstreams import Application, State
    except ImportError:
        print("  Quix Streams is not installed (pip install -e .[bench]): skipped")
        return None

    finals = {account: want.version for account, want in expected.items()}
    want_balances = {account: want.balance for account, want in expected.items()}
    progress = {"seen": 0, "mismatches": 0}
    marks = {"first": 0.0, "last": 0.0}

    with tempfile.TemporaryDirectory(prefix="bench-peers-quix-") as state_dir:
        app = Application(
            broker_address=bootstrap,
            consumer_group=group,
            auto_offset_reset="earliest",
            state_dir=state_dir,
            loglevel="WARNING",
        )

        def fold(event: dict[str, Any], state: State) -> None:
            if not progress["seen"]:
                marks["first"] = time.perf_counter()
            account: str = event["aggregate_id"]
            version: int = event["aggregate_version"]
            row = state.get("account")
            balance = Decimal(row["balance"]) if row else Decimal("0.00")
            balance = evolve(balance, event)
            state.set("account", {"balance": str(balance), "version": version})
            state.set(f"v{version}", event)
            if version == finals[account] and balance != want_balances[account]:
                progress["mismatches"] += 1
            progress["seen"] += 1
            if progress["seen"] == n:
                marks["last"] = time.perf_counter()
                app.stop()

        source = app.topic(topic, key_deserializer="str", value_deserializer="json")
        sdf = app.dataframe(source)
        sdf.apply(fold, stateful=True)

        started, cpu = time.perf_counter(), time.process_time()
        app.run(collect=False)
        total, cpu = time.perf_counter() - started, time.process_time() - cpu
    if progress["seen"] != n:
        raise RuntimeError(f"Quix fold stopped after {progress['seen']}/{n} events")
    return FoldRun(
        progress["seen"], marks["last"] - marks["first"], total, cpu, progress["mismatches"]
    )


# --- topics --------------------------------------------------------------------------------


async def cleanup(bootstrap: str, prefix: str, group: str) -> list[str]:
    """Delete this run's topics: the input one and Quix's `changelog__<group>--...`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = sorted(
            t for t in await admin.list_topics() if t.startswith(prefix) or f"__{group}--" in t
        )
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
    return names


def delete_group(bootstrap: str, group: str) -> str:
    """Quix's consumer group (aiokafka's admin cannot delete groups; confluent-kafka can)."""
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        return "not deleted (confluent-kafka missing)"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the future resolves
    futures = admin.delete_consumer_groups([group], request_timeout=30)
    try:
        futures[group].result(timeout=40)
    except Exception as error:  # best effort
        return f"not deleted ({error!r})"
    return "deleted"


# --- the run -------------------------------------------------------------------------------


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<40} {value:>12}  {note}")


def report(
    n: int,
    raw: FoldRun,
    quix: FoldRun | None,
    project: ProjectRun | None,
    rebuilt: Rebuild | None = None,
) -> None:
    project_eps = None if project is None else project.rate
    print(f"\nfold of the same {n} events (events/s from first record to last)")
    print(f"  {'':<40} {'events/s':>12}  notes")
    decoder = "json" if json_loads() is json.loads else "orjson"
    peers = ((f"raw aiokafka + {decoder} + dict", raw), ("Quix Streams (RocksDB state)", quix))
    for name, run in peers:
        if run is None:
            continue
        checked = "read models match" if not run.mismatches else f"{run.mismatches} MISMATCHES"
        line(
            name,
            f"{run.rate:,.0f}",
            f"{run.first_to_last_s:.2f} s; start->stopped {run.total_s:.2f} s "
            f"({run.events / run.total_s:,.0f}/s); CPU {1e6 * run.cpu_s / run.events:.0f} "
            f"µs/event; {checked}",
        )
    if project is not None:
        checked = "1000 accounts match" if not project.problems else "; ".join(project.problems[:3])
        line(
            "project worker (batched fold, from 0)",
            f"{project.rate:,.0f}",
            f"{project.first_to_last_s:.2f} s; start->caught up {project.start_to_caught_up_s:.2f}"
            f" s; CPU {1e6 * project.cpu_s / n:.0f} µs/event; RSS {project.rss_mb:.0f} MB "
            f"(peak {project.peak_rss_mb:.0f} MB); "
            f"{checked}",
        )
        line(
            "project worker, every fold readable",
            f"{project.ready_rate:,.0f}",
            f"{project.first_to_ready_s:.2f} s from its first event folded to /health 200 "
            "(the projection and the command side's memory of the topic)",
        )
    if rebuilt is not None:
        line(
            "shop rebuild accounts (worker up, idle)",
            f"{rebuilt.events / rebuilt.seconds:,.0f}",
            f"{rebuilt.events} events, requests to all switched {rebuilt.seconds:.2f} s "
            f"(the command's whole run {rebuilt.command_s:.2f} s: "
            f"{rebuilt.events / rebuilt.command_s:,.0f}/s)",
        )
    if quix is not None:
        ratio = quix.rate / raw.rate
        line("ratio Quix / raw", f"{ratio:.3f}", f"raw is {1 / ratio:.1f}x faster")
    if project is not None and project_eps is not None:
        line("ratio project / raw", f"{project_eps / raw.rate:.4f}", "")
        if quix is not None:
            line(
                "ratio project / Quix",
                f"{project_eps / quix.rate:.3f}",
                f"the project folds {project_eps / quix.rate:.2f}x as fast as Quix",
            )
            line(
                "ratio project (every fold) / Quix",
                f"{project.ready_rate / quix.rate:.3f}",
                "every fold of the worker readable, against Quix's one",
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--no-project", action="store_true", help="only the peers")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy the worker's fold (and its rebuild, to FILE.rebuild)",
    )
    args = parser.parse_args()
    if args.events < args.accounts:
        parser.error("--events must be at least --accounts")

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
        f"load avg {load}; python {platform.python_version()}"
    )
    print(
        f"aiokafka {version_of('aiokafka')}, quixstreams {version_of('quixstreams')}, "
        f"confluent-kafka {version_of('confluent-kafka')}, orjson {version_of('orjson')}"
    )
    print(f"N = {args.events} events over {args.accounts} accounts, {PARTITIONS} partitions")

    bootstrap = bootstrap_servers()
    run = uuid.uuid4().hex[:8]
    system = System(Path(tempfile.mkdtemp(prefix="bench-peers-")), partitions=PARTITIONS)
    topic = system.topic("accounts.events")
    group = f"bench-peers-{run}-quix"

    started = time.perf_counter()
    work = make_events(args.events, args.accounts, run)
    n = len(work.records)
    print(f"generated {n} events in {time.perf_counter() - started:.1f} s; topic {topic}")
    try:
        worker = system.worker().wait_ready(timeout=240)  # creates the system's topics
        worker.stop()
        produce_s = asyncio.run(produce(bootstrap, topic, work.records))
        print(f"produced in {produce_s:.1f} s ({n / produce_s:,.0f}/s, acks=all)")
        project = rebuilt = None
        if not args.no_project:
            project = asyncio.run(refold(system, worker, n, work.expected, args.profile))
            print(f"project fold done in {project.first_to_last_s:.1f} s")
            rebuild_profile = None
            if args.profile is not None:
                rebuild_profile = args.profile.with_name(f"{args.profile.name}.rebuild")
            rebuilt = rebuild_accounts(system, worker, rebuild_profile)
            print(f"shop rebuild accounts done in {rebuilt.seconds:.1f} s")
            worker.stop()
        raw = asyncio.run(fold_raw(bootstrap, topic, n, work.expected))
        print(f"raw fold done in {raw.total_s:.1f} s")
        quix = fold_quix(bootstrap, topic, group, n, work.expected)
        report(n, raw, quix, project, rebuilt)
    finally:
        system.stop()
        deleted = asyncio.run(cleanup(bootstrap, f"bench-peers-{run}", group))
        print(f"\ncleanup: the system's topics and {', '.join(deleted) or 'nothing else'}")
        if version_of("quixstreams") != "not installed":
            print(f"cleanup: consumer group {group} {delete_group(bootstrap, group)}")
        print(f"load avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
