"""`make soak`: three brokers, three workers, steady shop traffic, faults on a schedule.

    python -m bench.soak [--minutes 10] [--rate 10] [--standby-replicas 1] [--json FILE]

Starts a 3-broker cluster (scripts/kafka-cluster.sh, replication factor 3,
min.insync.replicas 2, acks=all) and three workers, then runs the sample shop
traffic (app/traffic.py) open loop at --rate operations a second. Clients retry
with the same Idempotency-Key, round robin over the workers. Meanwhile, at set
shares of the run: a broker is SIGKILLed and restarted; a worker is SIGKILLed
and restarted on an empty data dir; every worker is restarted in turn (rolling).
When the traffic stops and every order is final, the log is read straight from
Kafka and audited (bench/audit.py): no event lost or doubled, versions 1..n,
read models = fold of the log, money and stock conserved, every order final.

Prints, per phase (steady, each fault, after): commands/s and their latency
(first attempt to final answer, retries included); the longest wait; commands
that failed after every retry. Exit status 0 only when every check holds and no
command failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from app import traffic
from app.http_client import ApiClient, FinishedCommand, Tally
from bench.audit import audit_log, audit_read_models, read_log
from bench.local_shop import ROOT, System

CLUSTER = ROOT / "scripts" / "kafka-cluster.sh"
PARTITIONS = 8
OPEN_STATUSES = ("pending", "paid", "reserved")
SOAK_ATTEMPTS = 40
"""A soak client gives up on a command only after ~3 minutes of retries (backoff capped
at 5 s): longer than any failover here, so a failure is a real loss of service."""


@dataclass
class Recorder(Tally):
    """The client's tally, keeping every command as it finished."""

    done: list[FinishedCommand] = field(default_factory=list)

    def finished(self, command: FinishedCommand) -> None:
        self.done.append(command)


@dataclass
class Phase:
    name: str
    start: float
    end: float = 0.0
    note: str = ""


class Cluster:
    """The soak's brokers, run by scripts/kafka-cluster.sh on their own ports and data."""

    def __init__(self, workdir: Path, base_port: int) -> None:
        self.env = {
            **os.environ,
            "KAFKA_CLUSTER_PORT": str(base_port),
            "KAFKA_CLUSTER_DIR": str(workdir / "kafka"),
        }

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(CLUSTER), *args], env=self.env, check=True, stdout=subprocess.PIPE, text=True
        )
        return done.stdout.strip()

    def start(self) -> str:
        self.run("start")
        return self.run("bootstrap")

    def kill(self, node: int) -> None:
        self.run("kill", str(node))

    def start_node(self, node: int) -> None:
        self.run("start-node", str(node))

    def stop(self) -> None:
        subprocess.run([str(CLUSTER), "stop"], env=self.env, check=False)


async def under_replicated(bootstrap: str, prefix: str) -> int:
    """Partitions of this shop's topics whose in-sync replicas are fewer than their replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return sum(
        1
        for topic in described
        if topic["topic"].startswith(prefix)
        for partition in topic["partitions"]
        if len(partition["isr"]) < len(partition["replicas"])
    )


async def until_in_sync(bootstrap: str, prefix: str) -> None:
    """Polls (the admin API has no way to wait) until no partition lacks a replica."""
    while True:
        if not await under_replicated(bootstrap, prefix):
            return
        await asyncio.sleep(1.0)


async def in_thread(call: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(call, *args)


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.cluster = Cluster(workdir, args.kafka_port)
        self.phases: list[Phase] = []
        self.recorder = Recorder()
        self.system: System | None = None
        self.began = 0.0

    def say(self, message: str) -> None:
        print(f"soak {time.monotonic() - self.began:7.1f}s  {message}", flush=True)

    # --- faults -------------------------------------------------------------------

    async def broker_crash(self, system: System) -> str:
        node = 2
        self.cluster.kill(node)
        self.say(f"broker {node} SIGKILLed")
        await asyncio.sleep(self.args.broker_down)
        await in_thread(self.cluster.start_node, node)
        self.say(f"broker {node} restarted; waiting for every replica back in sync")
        restarted = time.monotonic()
        await until_in_sync(system.bootstrap, system.id)
        return (
            f"down {self.args.broker_down:g} s, in sync {time.monotonic() - restarted:.1f} s later"
        )

    async def worker_crash(self, system: System) -> str:
        victim = system.workers[1]
        victim.kill(signal.SIGKILL)
        self.say(f"worker {victim.name} SIGKILLed")
        shutil.rmtree(victim.datadir, ignore_errors=True)
        await asyncio.sleep(self.args.worker_down)
        victim.start()
        began = time.monotonic()
        await in_thread(victim.wait_ready, 300.0)
        return f"restarted on an empty data dir, ready in {time.monotonic() - began:.1f} s"

    async def rolling_restart(self, system: System) -> str:
        took = []
        for worker in system.workers:
            began = time.monotonic()
            await in_thread(worker.stop)
            worker.start()
            await in_thread(worker.wait_ready, 300.0)
            took.append(f"{worker.name} {time.monotonic() - began:.1f} s")
            self.say(f"worker {worker.name} restarted (SIGTERM, start, ready)")
        return ", ".join(took)

    async def fault(self, name: str, at: float, run: Callable[[System], Awaitable[str]]) -> None:
        assert self.system is not None
        await asyncio.sleep(max(0.0, self.began + at - time.monotonic()))
        phase = Phase(name, time.monotonic())
        self.phases.append(phase)
        self.say(f"{name}: begins")
        phase.note = await run(self.system)
        phase.end = time.monotonic()
        self.say(f"{name}: over ({phase.note})")

    # --- the run ------------------------------------------------------------------

    async def run(self) -> int:
        args = self.args
        self.began = time.monotonic()
        self.say(f"starting 3 brokers (ports from {args.kafka_port})")
        bootstrap = await in_thread(self.cluster.start)
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        system = self.system = System(
            self.workdir,
            partitions=PARTITIONS,
            SHOP_REPLICATION_FACTOR="3",
            SHOP_STANDBY_REPLICAS=str(args.standby_replicas),
        )
        try:
            return await self._run(system)
        finally:
            for worker in system.workers:
                worker.stop()
            self.cluster.stop()

    async def _run(self, system: System) -> int:
        args = self.args
        for _ in range(args.workers):
            system.worker()
        for worker in system.workers:
            await in_thread(worker.wait_ready, 300.0)
        self.say(f"{args.workers} workers ready: {', '.join(w.url for w in system.workers)}")
        urls = [w.url for w in system.workers]
        rng = random.Random(args.seed)
        async with ApiClient(
            urls, timeout=15.0, tally=self.recorder, max_attempts=SOAK_ATTEMPTS
        ) as client:
            shop = await traffic.set_up(client, traffic.account_ids(args.accounts), rng)
            self.recorder.done.clear()  # the phases time the steady traffic only
            seconds = args.minutes * 60
            self.began = time.monotonic()
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(seconds, stop.set)
            self.say(f"traffic: {args.rate}/s for {seconds:g} s over {args.accounts} accounts")
            load = asyncio.create_task(traffic.run(client, shop, args.rate, stop, rng))
            await self.fault("broker crash", 0.15 * seconds, self.broker_crash)
            await self.fault("worker crash, empty data", 0.40 * seconds, self.worker_crash)
            await self.fault("rolling restart", 0.65 * seconds, self.rolling_restart)
            await load
            ended = time.monotonic()
            self.say("traffic stopped; waiting for every order to be final")
            await self.drain(client)
            report = self.figures(min(ended, self.began + seconds))
            self.say("reading the log from Kafka and auditing it")
            log = await read_log(system.bootstrap, f"{system.id}.", PARTITIONS)
            audit, folded = audit_log(log, self.recorder.done)
            await audit_read_models(client, folded, audit)
        print(self.render(report))
        print("audit (against the topics read straight from Kafka):")
        print(audit.report())
        report["audit"] = {
            "checks": dict(audit.checks),
            "problems": audit.problems,
            "facts": audit.facts,
        }
        if args.json:
            text = json.dumps(report, indent=2, default=str) + "\n"
            await in_thread(Path(args.json).write_text, text)
        failed = report["failed after retries"]
        verdict = audit.ok and failed == 0
        print(f"soak: {'PASSED' if verdict else 'FAILED'} ({failed} commands failed after retries)")
        return 0 if verdict else 1

    async def drain(self, client: ApiClient) -> None:
        deadline = time.monotonic() + self.args.drain
        while time.monotonic() < deadline:
            open_orders = 0
            for status in OPEN_STATUSES:
                answer = await client.get("/orders", {"status": status, "limit": "100"})
                if answer.status == 200:
                    open_orders += len(answer.json()["orders"])
                else:
                    open_orders += 1
            if not open_orders:
                return
            await asyncio.sleep(2.0)
        self.say(f"orders still open after {self.args.drain:g} s (the audit will say which)")

    # --- figures ------------------------------------------------------------------

    def windows(self, ended: float) -> list[Phase]:
        """steady, each fault, and the quiet stretches between them, in time order."""
        spans: list[Phase] = []
        cursor = self.began
        for number, phase in enumerate(self.phases):
            spans.append(Phase("steady" if number == 0 else "between faults", cursor, phase.start))
            spans.append(phase)
            cursor = phase.end
        spans.append(Phase("after the faults", cursor, ended))
        return [s for s in spans if s.end - s.start >= 1.0]

    def figures(self, ended: float) -> dict[str, Any]:
        done = self.recorder.done
        failed = [c for c in done if gave_up(c)]
        phases = []
        for span in self.windows(ended):
            mine = [c for c in done if span.start <= c.started < span.end]
            waits = sorted(c.ended - c.started for c in mine)
            # a fault may outlast the traffic: its rate counts the time traffic ran
            sending = max(min(span.end, ended) - span.start, 1e-9)
            phases.append(
                {
                    "phase": span.name,
                    "seconds": round(span.end - span.start, 1),
                    "commands": len(mine),
                    "per_second": round(len(mine) / sending, 1),
                    "p50_ms": round(percentile(waits, 0.50) * 1000),
                    "p99_ms": round(percentile(waits, 0.99) * 1000),
                    "max_ms": round((waits[-1] if waits else 0.0) * 1000),
                    "retried": sum(1 for c in mine if c.attempts > 1),
                    "refusals": dict(Counter(r for c in mine for r in c.refusals).most_common(4)),
                    "failed": sum(1 for c in mine if gave_up(c)),
                    "note": span.note,
                }
            )
        longest = max(done, key=lambda c: c.ended - c.started, default=None)
        return {
            "settings": {
                "minutes": self.args.minutes,
                "rate": self.args.rate,
                "workers": self.args.workers,
                "standby_replicas": self.args.standby_replicas,
                "brokers": 3,
                "replication_factor": 3,
                "min_insync_replicas": 2,
            },
            "commands": len(done),
            "statuses": {str(k): v for k, v in sorted(self.recorder.statuses.items())},
            "retries": self.recorder.retries,
            "failed after retries": len(failed),
            "longest wait ms": round((longest.ended - longest.started) * 1000) if longest else 0,
            "longest wait command": longest.path if longest else "",
            "failed commands": [
                f"{c.path} after {c.attempts} attempts, {c.ended - c.started:.0f} s: "
                f"{c.answer[:160].decode(errors='replace')}"
                for c in failed[:10]
            ],
            "phases": phases,
        }

    @staticmethod
    def render(report: dict[str, Any]) -> str:
        lines = [
            "",
            f"soak: {report['settings']}",
            f"commands {report['commands']}, statuses {report['statuses']}, "
            f"retries {report['retries']}, failed after retries {report['failed after retries']}",
            f"longest wait: {report['longest wait ms']} ms ({report['longest wait command']})",
            "",
            f"{'phase':26} {'s':>6} {'cmds':>6} {'/s':>6} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'max ms':>7} {'retried':>7} {'failed':>6}  note",
        ]
        for p in report["phases"]:
            lines.append(
                f"{p['phase']:26} {p['seconds']:6} {p['commands']:6} {p['per_second']:6} "
                f"{p['p50_ms']:7} {p['p99_ms']:7} {p['max_ms']:7} {p['retried']:7} "
                f"{p['failed']:6}  {p['note']}"
            )
        lines.append("")
        lines += [f"retried for, {p['phase']}: {p['refusals']}" for p in report["phases"]]
        lines += [f"failed: {line}" for line in report["failed commands"]]
        return "\n".join(lines) + "\n"


def gave_up(command: FinishedCommand) -> bool:
    """No answer, or still a server error, after every attempt."""
    return command.status is None or command.status >= 500


def percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="traffic time (default 10)")
    parser.add_argument("--rate", type=float, default=5.0, help="operations/s (default 5)")
    parser.add_argument("--accounts", type=int, default=200, help="customers (default 200)")
    parser.add_argument("--workers", type=int, default=3, help="faust workers (default 3)")
    parser.add_argument(
        "--standby-replicas",
        type=int,
        default=1,
        help="warm standbys of each partition (default 1)",
    )
    parser.add_argument("--broker-down", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--worker-down", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("--drain", type=float, default=180.0, help="seconds for orders to end")
    parser.add_argument("--kafka-port", type=int, default=29092, help="the brokers' first port")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--json", help="also write the figures and the audit here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    args = parser.parse_args(argv)
    if args.workers < 2:
        parser.error("--workers must be at least 2 (one of them is crashed)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="shop-soak-"))
    try:
        return asyncio.run(Soak(args, workdir).run())
    finally:
        if args.keep:
            print(f"soak: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
