"""Account events: the projection's throughput against a raw consumer, and command latency.

    python -m bench.accounts [--events 50000] [--commands 2000] [--concurrency 16]
                             [--accounts 1000] [--sequential 300] [--profile FILE]

In one run, on one isolated copy of the system (its own app id and topic prefix
on the shared broker, one real `faust worker` subprocess):

1. projection: with the worker ready, produce N valid account events (opened,
   then deposits and withdrawals that keep every balance >= 0), and time from
   the first send until the projection has reported the end offsets of
   `<prefix>accounts.events` to its progress group `<id>-accounts-projection` (measured
   from Kafka, outside the app);
   then check every account's read model over HTTP (final version and balance);
2. the ceiling: a plain aiokafka consumer (no group, all partitions assigned,
   from the beginning) reading the same N records: raw; decoding each envelope
   with `EventEnvelope.model_validate_json`; and with the worker's full
   decode (`decode_event`: envelope + payload model) plus the pure fold in a dict;
3. commands: POST /accounts/{id}/deposits -> 201, one at a time (the raw round
   trip) and C in flight: p50/p95/p99 and commands/s.

Also printed: the worker's CPU time per event (from /proc, robust to a noisy
machine) and the changelog records the projection wrote per event.
Figures come from one run on a shared machine: compare the ratios, not absolutes.
`--profile FILE` samples the worker with py-spy during the projection and prints
where its time went (this slows the worker a little: use a separate run for figures).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.settings import settings
from bench.local_shop import System, Worker, bootstrap_servers, reachable
from domain.accounts import ACCOUNTS as ACCOUNT_DECIDER
from models.accounts import AccountOpened, MoneyDeposited, MoneyWithdrawn
from models.envelope import EventEnvelope
from models.upcasting import decode_event

BROKER_WAIT = 180.0
"""Seconds to wait for a shared broker that is restarting before starting one's own."""

CATCH_UP_TIMEOUT = 900.0
"""Seconds the projection may take to fold everything before the bench gives up."""


# --- the events ------------------------------------------------------------------


@dataclass
class Expected:
    version: int = 0
    balance: Decimal = Decimal("0.00")


@dataclass
class Workload:
    records: list[tuple[bytes, bytes]]
    expected: dict[str, Expected]
    counts: collections.Counter[str] = field(default_factory=collections.Counter)


def make_events(n: int, accounts: int, run: str, seed: int = 7) -> Workload:
    """n valid account events over `accounts` accounts, interleaved: versions 1..k each."""
    rng = random.Random(seed)
    expected: dict[str, Expected] = {}
    records: list[tuple[bytes, bytes]] = []
    counts: collections.Counter[str] = collections.Counter()
    start = datetime.now(UTC) - timedelta(hours=1)
    ids = [f"bench-{run}-{i:05d}" for i in range(accounts)]
    for i in range(n):
        account = ids[i % accounts]
        state = expected.setdefault(account, Expected())
        version = state.version + 1
        payload: AccountOpened | MoneyDeposited | MoneyWithdrawn
        if version == 1:
            payload = AccountOpened(owner=f"owner {account}")
        else:
            amount = Decimal(rng.randint(1, 50_000)).scaleb(-2)
            if state.balance >= amount and rng.random() < 0.4:
                payload = MoneyWithdrawn(amount=amount, reference="bench")
                state.balance -= amount
            else:
                payload = MoneyDeposited(amount=amount, reference="bench")
                state.balance += amount
        state.version = version
        counts[payload.event_type] += 1
        envelope = EventEnvelope(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"bench:{run}:{account}:{version}"),
            event_type=payload.event_type,
            schema_version=payload.schema_version,
            aggregate_type="account",
            aggregate_id=account,
            aggregate_version=version,
            occurred_at=start + timedelta(milliseconds=i),
            correlation_id=account,
            causation_id=f"bench-{run}",
            payload=payload.model_dump(mode="json"),
        )
        records.append((account.encode(), envelope.model_dump_json().encode()))
    return Workload(records, expected, counts)


# --- Kafka helpers ------------------------------------------------------------------


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        for _ in range(50):
            found = consumer.partitions_for_topic(topic)
            if found:
                return [TopicPartition(topic, p) for p in sorted(found)]
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.2)
        raise RuntimeError(f"topic {topic} not found")
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def app_topics(bootstrap: str, system_id: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(system_id))
    finally:
        await admin.close()


async def changelog_ends(bootstrap: str, system_id: str) -> dict[str, int]:
    """Records written so far to each of this namespace's table changelogs."""
    names = [t for t in await app_topics(bootstrap, system_id) if t.endswith("-changelog")]
    totals: dict[str, int] = {}
    for name in names:
        tps = await partitions_of(bootstrap, name)
        ends = await end_offsets(bootstrap, tps)
        totals[name] = sum(ends.values())
    return totals


async def delete_topics(bootstrap: str, system_id: str) -> int:
    names = await app_topics(bootstrap, system_id)
    if names:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics(names)
        finally:
            await admin.close()
    return len(names)


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks="all"
    )
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


# --- 1. the projection ---------------------------------------------------------------


def run_queue_seconds(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ProjectionRun:
    produce_s: float
    caught_up_s: float
    first_commit_s: float
    steady_rate: float
    worker_cpu_s: float
    worker_wait_s: float


async def projection(
    system: System, worker: Worker, topic: str, records: list[tuple[bytes, bytes]]
) -> ProjectionRun:
    """Produce the events to the running worker and time until its group committed them all."""
    assert worker.process is not None
    tps = await partitions_of(system.bootstrap, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=system.bootstrap)
    await admin.start()

    async def committed() -> int:
        # the projection reports its stored offsets to this group (agents/folds.py)
        offsets = await admin.list_consumer_group_offsets(
            f"{system.id}-accounts-projection", partitions=tps
        )
        return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)

    try:
        base = await committed()
        cpu_before = cpu_seconds(worker.process.pid)
        wait_before = run_queue_seconds(worker.process.pid)
        started = time.perf_counter()
        producing = asyncio.create_task(produce(system.bootstrap, topic, records))
        target: int | None = None
        samples: list[tuple[float, int]] = []
        deadline = started + CATCH_UP_TIMEOUT
        while True:
            if producing.done() and target is None:
                await producing  # raise a producer error here
                ends = await end_offsets(system.bootstrap, tps)
                target = sum(ends.values())
            done = await committed()
            now = time.perf_counter()
            samples.append((now, done))
            if target is not None and done >= target:
                break
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker exited during the projection:\n{worker.tail()}")
            if now > deadline:
                raise TimeoutError(
                    f"projection not caught up after {CATCH_UP_TIMEOUT}s: "
                    f"{done - base}/{len(records)} committed"
                )
            await asyncio.sleep(0.1)
        caught_up = time.perf_counter() - started
        cpu = cpu_seconds(worker.process.pid) - cpu_before
        waited = run_queue_seconds(worker.process.pid) - wait_before
        produce_s = producing.result()
    finally:
        await admin.close()
    moved = [(t, c) for t, c in samples if c > base]
    first_t, first_c = moved[0]
    last_t, last_c = samples[-1]
    steady = (last_c - first_c) / (last_t - first_t) if last_t > first_t else float("nan")
    return ProjectionRun(produce_s, caught_up, first_t - started, steady, cpu, waited)


async def verify(url: str, expected: dict[str, Expected], concurrency: int = 16) -> list[str]:
    """Every account's read model must show its last version and balance."""
    problems: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30.0)) as session:

        async def one(account: str, want: Expected) -> None:
            async with gate, session.get(f"{url}/accounts/{account}") as response:
                status, text = response.status, await response.text()
            if status != 200:
                problems.append(f"{account}: HTTP {status} {text[:200]}")
                return
            body = json.loads(text)
            if body["version"] != want.version or Decimal(body["balance"]) != want.balance:
                problems.append(
                    f"{account}: version {body['version']} balance {body['balance']}, "
                    f"want {want.version} {want.balance}"
                )

        await asyncio.gather(*(one(a, w) for a, w in expected.items()))
    return problems


# --- 2. the ceiling ---------------------------------------------------------------------


def fold_in_memory(rows: dict[str, Any], raw: bytes) -> None:
    """The projection's pure work without Kafka or tables: decode, evolve, dump to a dict."""
    envelope = decode_event(raw)
    stored = rows.get(envelope.aggregate_id)
    state = (
        ACCOUNT_DECIDER.initial_state(envelope.aggregate_id)
        if stored is None
        else ACCOUNT_DECIDER.state_type.model_validate(stored)
    )
    rows[envelope.aggregate_id] = ACCOUNT_DECIDER.apply(state, envelope).model_dump(mode="json")


async def ceiling(bootstrap: str, topic: str, n: int, mode: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to read n records and handle each by `mode`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    rows: dict[str, Any] = {}
    try:
        tps = await partitions_of(bootstrap, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        started, cpu = time.perf_counter(), time.process_time()
        deadline = started + 300
        while seen < n:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"raw consumer read {seen}/{n} in 300 s")
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                if mode == "envelope":
                    for record in records:
                        EventEnvelope.model_validate_json(record.value)
                elif mode == "fold":
                    for record in records:
                        fold_in_memory(rows, record.value)
                seen += len(records)
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await consumer.stop()


# --- 3. commands ---------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class CommandRun:
    concurrency: int
    total: int
    elapsed: float
    latencies_ms: list[float]
    failures: collections.Counter[str]

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed


async def open_accounts(url: str, ids: list[str]) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60.0)) as session:
        for account in ids:
            body = {"account_id": account, "owner": "b"}
            async with session.post(f"{url}/accounts", json=body) as response:
                if response.status != 201:
                    text = await response.text()
                    raise RuntimeError(f"open {account}: {response.status} {text}")


async def commands(url: str, ids: list[str], total: int, concurrency: int) -> CommandRun:
    latencies: list[float] = []
    failures: collections.Counter[str] = collections.Counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        queue = iter(range(total))

        async def client_loop() -> None:
            for i in queue:  # each loop takes the next command: C in flight, always
                started = time.perf_counter()
                try:
                    async with session.post(
                        f"{url}/accounts/{ids[i % len(ids)]}/deposits",
                        json={"amount": "1.00", "reference": "bench"},
                    ) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    failures[type(error).__name__] += 1
                    continue
                if status == 201:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    failures[f"HTTP {status}"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return CommandRun(concurrency, total, elapsed, latencies, failures)


# --- profiling (optional) ----------------------------------------------------------------


def start_profile(pid: int, path: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("(py-spy not found: no profile)")
        return None
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "--output",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop_profile(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is None:
        return
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


FOLD_FRAMES = {"fold", "StateFold.fold"}
"""py-spy's name for the projection's fold (with or without its class)."""


def summarize_profile(path: Path, top: int = 14, phase: str = "the projection") -> None:
    """Where the worker's samples went, from py-spy's collapsed stacks."""
    if not path.exists():
        print(f"(no profile written to {path})")
        return
    total = 0
    callbacks: collections.Counter[str] = collections.Counter()
    handler: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for row in path.read_text().splitlines():
        stack, _, count = row.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        names = [frame.split(" (")[0] for frame in stack.split(";")]
        own[names[-1]] += n
        if names[0] == "Thread._bootstrap":
            callbacks["(faust's consumer thread) " + names[-1]] += n
        elif "Handle._run" in names:
            i = names.index("Handle._run")
            callbacks[" > ".join(names[i + 1 : i + 4])] += n
        else:
            callbacks["(event loop itself) " + names[-1]] += n
        folds = [i for i, name in enumerate(names) if name in FOLD_FRAMES]
        if folds:
            i = folds[0]
            handler[" > ".join(names[i + 1 : i + 4]) or names[i]] += n
    print(f"\nworker profile during {phase}: {total} py-spy samples ({path})")
    print("  what the main event loop ran (callback > 2 frames below it):")
    for name, n in callbacks.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {name}")
    print("  inside the folds (StateFold.fold > ...):")
    for name, n in handler.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {name}")
    print("  top self time:")
    for name, n in own.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {name}")


# --- the run --------------------------------------------------------------------------------


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<46} {value:>16}  {note}")


def machine_facts(args: argparse.Namespace) -> None:
    import aiokafka
    import faust
    import pydantic

    guarantee = settings.processing_guarantee
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
        f"load avg {load}, {platform.machine()}, Linux {platform.release()}"
    )
    print(
        f"python {platform.python_version()}; faust-streaming {faust.__version__}, "
        f"aiokafka {aiokafka.__version__}, pydantic {pydantic.VERSION}"
    )
    print(
        f"settings: events={args.events} accounts={args.accounts} commands={args.commands} "
        f"concurrency={args.concurrency} sequential={args.sequential}; 1 worker, "
        f"8 partitions, {guarantee}, standby replicas 0"
    )


async def main_async(args: argparse.Namespace, system: System, worker: Worker) -> None:
    topic = system.topic("accounts.events")
    run = uuid.uuid4().hex[:6]
    t0 = time.perf_counter()
    work = make_events(args.events, args.accounts, run)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(work.counts.items()))
    print(
        f"generated {len(work.records)} events in {time.perf_counter() - t0:.1f}s ({kinds}), "
        f"{sum(len(v) for _, v in work.records) / len(work.records):.0f} B each"
    )
    n = len(work.records)

    changelog_before = await changelog_ends(system.bootstrap, system.id)
    assert worker.process is not None
    profile_path: Path | None = args.profile
    spy = start_profile(worker.process.pid, profile_path) if profile_path else None
    try:
        proj = await projection(system, worker, topic, work.records)
    finally:
        stop_profile(spy)
    await asyncio.sleep(1.5)  # the changelog producer's buffer drains
    changelog_after = await changelog_ends(system.bootstrap, system.id)
    problems = await verify(worker.url, work.expected)

    raw_s, raw_cpu = await ceiling(system.bootstrap, topic, n, "raw")
    env_s, env_cpu = await ceiling(system.bootstrap, topic, n, "envelope")
    fold_s, fold_cpu = await ceiling(system.bootstrap, topic, n, "fold")

    print("\n1. projection vs the ceiling (same N records, same topic, one run)")
    print(f"  {'':<46} {'events/s':>16}  notes")
    line(
        "produce (aiokafka, acks=all)",
        f"{n / proj.produce_s:,.0f}",
        f"{proj.produce_s:.2f} s for {n}",
    )
    line(
        "raw consumer: read only",
        f"{n / raw_s:,.0f}",
        f"{raw_s:.2f} s, CPU {1e6 * raw_cpu / n:.1f} µs/event",
    )
    line(
        "raw consumer: read + EventEnvelope decode",
        f"{n / env_s:,.0f}",
        f"{env_s:.2f} s, CPU {1e6 * env_cpu / n:.1f} µs/event  <- the ceiling",
    )
    line(
        "raw consumer: read + decode_event + fold (dict)",
        f"{n / fold_s:,.0f}",
        f"{fold_s:.2f} s, CPU {1e6 * fold_cpu / n:.1f} µs/event  (pure work, no table)",
    )
    line(
        "system: produce start -> all committed",
        f"{n / proj.caught_up_s:,.0f}",
        f"{proj.caught_up_s:.2f} s (first commit after {proj.first_commit_s:.2f} s)",
    )
    line("system: steady (first -> last commit)", f"{proj.steady_rate:,.0f}", "")
    line(
        "system: worker CPU per event",
        f"{1e6 * proj.worker_cpu_s / n:.0f} µs",
        f"{proj.worker_cpu_s:.1f} CPU s over {proj.caught_up_s:.1f} s wall "
        f"= {100 * proj.worker_cpu_s / proj.caught_up_s:.0f}% of a core",
    )
    line(
        "system: worker waiting for a CPU (run queue)",
        f"{proj.worker_wait_s:.1f} s",
        "all threads; the rest of the wall time it was idle (awaiting I/O)",
    )
    line(
        "ratio system / ceiling (events/s)",
        f"{env_s / proj.caught_up_s:.3f}",
        f"the ceiling is {proj.caught_up_s / env_s:.1f}x faster",
    )
    line("ratio system / raw read", f"{raw_s / proj.caught_up_s:.3f}", "")
    line("ratio system / pure fold", f"{fold_s / proj.caught_up_s:.3f}", "")
    line(
        "CPU ratio worker / ceiling per event", f"{proj.worker_cpu_s / max(env_cpu, 1e-9):.1f}x", ""
    )
    print("  changelog records written during the projection:")
    for name in sorted(changelog_after):
        written = changelog_after[name] - changelog_before.get(name, 0)
        if written:
            line(
                f"  {name.removeprefix(system.id + '-')}",
                f"{written:,}",
                f"{written / n:.2f} per event",
            )
    total_changelog = sum(changelog_after.values()) - sum(changelog_before.values())
    line("  all changelogs", f"{total_changelog:,}", f"{total_changelog / n:.2f} per event")
    verdict = "all match" if not problems else f"{len(problems)} MISMATCH(ES)"
    line("read models checked over HTTP", f"{len(work.expected)} accounts", verdict)
    for problem in problems[:10]:
        print(f"    {problem}")

    print("\n2. command round trip (POST /accounts/{{id}}/deposits -> 201)")
    ids = [f"cmd-{run}-{i:03d}" for i in range(max(args.concurrency * 4, 8))]
    await open_accounts(worker.url, ids)
    print(
        f"  {'':<20} {'commands':>8} {'cmd/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8}  failures"
    )
    for concurrency, total in ((1, args.sequential), (args.concurrency, args.commands)):
        result = await commands(worker.url, ids, total, concurrency)
        ms = result.latencies_ms or [float("nan")]
        fails = ", ".join(f"{k} {v}" for k, v in result.failures.items()) or "none"
        print(
            f"  {f'{concurrency} in flight':<20} {result.total:>8} {result.rate:>8.0f} "
            f"{pct(ms, 50):>8.1f} {pct(ms, 95):>8.1f} {pct(ms, 99):>8.1f} {max(ms):>8.1f}"
            f"  {fails}"
        )

    if profile_path:
        summarize_profile(profile_path)


def wait_for_broker(bootstrap: str, timeout: float) -> None:
    """The broker is shared: someone may be restarting it; give it time to come back."""
    deadline = time.monotonic() + timeout
    while not reachable(bootstrap) and time.monotonic() < deadline:
        time.sleep(2)
    if not reachable(bootstrap):
        print(f"broker {bootstrap} unreachable for {timeout:.0f}s: bench.local_shop will start one")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sequential", type=int, default=300, help="commands sent one by one")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy the worker; collapsed stacks here"
    )
    parser.add_argument("--keep-topics", action="store_true", help="leave the namespace's topics")
    args = parser.parse_args()
    if args.events < args.accounts:
        parser.error("--events must be at least --accounts")
    machine_facts(args)

    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so the worker is stopped
    signal.signal(signal.SIGTERM, _interrupt)
    wait_for_broker(bootstrap_servers(), BROKER_WAIT)
    with tempfile.TemporaryDirectory(prefix="bench-accounts-") as workdir:
        system = System(Path(workdir))
        print(f"namespace: {system.id} (topic prefix {system.id}.), broker {system.bootstrap}")
        try:
            started = time.perf_counter()
            worker = system.worker().wait_ready(timeout=180)
            pid = worker.process.pid if worker.process else None
            print(f"worker ready in {time.perf_counter() - started:.1f}s (pid {pid}, {worker.url})")
            asyncio.run(main_async(args, system, worker))
        except Exception:
            for w in system.workers:
                print(f"--- log tail of {w.name} ---\n{w.tail(15)}", file=sys.stderr)
            raise
        finally:
            for w in system.workers:  # SIGTERM, then SIGKILL after 60 s (bench.local_shop)
                w.stop()
            if not args.keep_topics:
                try:
                    deleted = asyncio.run(delete_topics(system.bootstrap, system.id))
                    print(f"cleanup: worker stopped, {deleted} topics of {system.id} deleted")
                except Exception as error:  # cleanup is best effort
                    print(f"cleanup: could not delete topics: {error!r}")


if __name__ == "__main__":
    main()
