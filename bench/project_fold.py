"""The project's leg of the peers bench: a real worker folds a full accounts.events from 0.

The worker starts on an empty data dir after the N events are on the topic, so
what it does is exactly a rebuild from the log: every partition store folds from
offset 0. Timed from its first progress report to the last (as the peers are
timed from first record to last), read from Kafka (the `<id>-accounts-projection` group), and
then checked over HTTP for a sample of accounts. Also measured: the worker's CPU
per event and its resident memory once caught up.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.accounts import (
    Expected,
    cpu_seconds,
    partitions_of,
    start_profile,
    stop_profile,
    summarize_profile,
    verify,
)
from bench.local_shop import ROOT, System, Worker

FOLD_TIMEOUT = 900.0


@dataclass
class ProjectRun:
    events: int
    first_to_last_s: float
    start_to_caught_up_s: float
    """From starting the worker process (empty data dir) until the projection is folded."""
    first_to_ready_s: float
    """From the first event folded until every fold of the worker (the projection and the
    command side's memory of the same topic among them) reached the log's end: the
    worker answers /health 200, every row readable."""
    cpu_s: float
    rss_mb: float
    peak_rss_mb: float
    problems: list[str]

    @property
    def rate(self) -> float:
        return self.events / self.first_to_last_s if self.first_to_last_s > 0 else float("nan")

    @property
    def ready_rate(self) -> float:
        return self.events / self.first_to_ready_s if self.first_to_ready_s > 0 else float("nan")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS), or the peak since the process started (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def folded(
    admin: AIOKafkaAdminClient, group: str, topic: str, tps: list[TopicPartition]
) -> int:
    offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)


async def refold(
    system: System, worker: Worker, n: int, expected: dict[str, Expected], profile: Path | None
) -> ProjectRun:
    """Start `worker` on an empty data dir and time its fold of the whole topic."""
    topic = system.topic("accounts.events")
    tps = await partitions_of(system.bootstrap, topic)
    shutil.rmtree(worker.datadir, ignore_errors=True)
    admin = AIOKafkaAdminClient(bootstrap_servers=system.bootstrap)
    await admin.start()
    group = f"{system.id}-accounts-projection"
    try:
        started = time.perf_counter()
        worker.start()
        assert worker.process is not None
        spy = None if profile is None else start_profile(worker.process.pid, profile)
        cpu_before = None
        first = last = 0.0
        done = first_done = 0
        deadline = started + FOLD_TIMEOUT
        while done < n:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker exited during the fold:\n{worker.tail()}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"project fold: {done}/{n} after {FOLD_TIMEOUT:.0f} s")
            if cpu_before is None:
                cpu_before = cpu_seconds(worker.process.pid)
            done = await folded(admin, group, topic, tps)
            if done and not first:
                first, first_done = time.perf_counter(), done
            await asyncio.sleep(0.05)
        last = time.perf_counter()
        while not worker.answers_ready():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"every fold: not ready after {FOLD_TIMEOUT:.0f} s")
            await asyncio.sleep(0.05)
        ready = time.perf_counter()
        cpu = cpu_seconds(worker.process.pid) - (cpu_before or 0.0)
        stop_profile(spy)
        memory, peak = rss_mb(worker.process.pid), rss_mb(worker.process.pid, "VmHWM")
    finally:
        await admin.close()
    sample = dict(random.Random(1).sample(sorted(expected.items()), min(1000, len(expected))))
    problems = await verify(worker.url, sample)
    if profile is not None:
        summarize_profile(profile)
    return ProjectRun(
        n - first_done, last - first, last - started, ready - first, cpu, memory, peak, problems
    )


@dataclass
class Rebuild:
    events: int
    seconds: float
    """From the requests sent to every partition switched (as the command prints it)."""
    command_s: float
    """The command's whole run, its start-up included."""


def rebuild_accounts(system: System, worker: Worker, profile: Path | None = None) -> Rebuild:
    """`shop rebuild accounts` against the caught-up, idle worker: every partition folded
    from offset 0 into a fresh store and swapped in, timed as the command runs it;
    `profile`: py-spy samples the worker meanwhile."""
    assert worker.process is not None
    spy = None if profile is None else start_profile(worker.process.pid, profile)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "rebuild", "accounts", "--timeout", "900"],
        cwd=ROOT,
        env={**os.environ, **system.env},
        capture_output=True,
        text=True,
        timeout=960,
    )
    seconds = time.perf_counter() - started
    stop_profile(spy)
    if profile is not None:
        summarize_profile(profile, phase="the rebuild")
    replayed = re.search(r"accounts: (\d+) events replayed", result.stdout)
    switched = re.search(r"partitions switched in ([\d.]+) s", result.stdout)
    if result.returncode != 0 or replayed is None or switched is None:
        raise RuntimeError(f"shop rebuild accounts failed:\n{result.stdout}\n{result.stderr}")
    return Rebuild(int(replayed.group(1)), float(switched.group(1)), seconds)
