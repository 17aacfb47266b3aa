"""How long a client waits when a worker goes away: a crash and restart, a crash for
good, a rolling restart.

    python -m bench.failover [--rate 20] [--accounts 40] [--settle 20] [--json FILE]

Two workers on the local broker (eight partitions). Deposits arrive open loop at
--rate a second, each first sent to the next worker in turn, through a client that
retries with the same Idempotency-Key on the other worker (503/504 or no answer),
waiting at most RETRY_WAIT between attempts, so the figures are the system's and
not the client's back-off. Then, with --settle s of steady traffic before each:

1. **crash and restart**: worker 2 is SIGKILLed and started again 2 s later, with
   its own data dir and name (as a supervisor does);
2. **rolling restart**: each worker in turn gets SIGTERM, is started again and
   answers /health before the next;
3. **crash for good**: worker 2 is SIGKILLed and stays down.

For each phase (from the fault to --settle s after it ended) it prints the
commands sent, the longest and p99 wait from a command's first send to its final
answer, the commands that needed a retry and those that failed after all of them.
Then the log is read straight from Kafka and audited (bench/audit.py): every
acknowledged deposit is there once, versions 1..n, balances are the fold of the
log. Exit status 0 only when the audit holds and no command failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from app.http_client import ApiClient
from bench.audit import audit_log, read_log
from bench.local_shop import System
from bench.soak import SOAK_ATTEMPTS, Phase, Recorder, gave_up, in_thread, percentile

PARTITIONS = 8
RESTART_AFTER = 2.0
"""Seconds a crashed worker stays down before its supervisor starts it again."""
RETRY_WAIT = 0.25
"""The longest a client waits between two attempts of a command."""


class Failover:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.system = System(workdir, partitions=PARTITIONS)
        self.recorder = Recorder()
        self.phases: list[Phase] = []
        self.began = 0.0

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:7.1f} s] {message}", flush=True)

    # --- the faults ---------------------------------------------------------------

    async def crash_and_restart(self) -> str:
        victim = self.system.workers[1]
        victim.kill(signal.SIGKILL)
        await asyncio.sleep(RESTART_AFTER)
        victim.start()
        began = time.monotonic()
        await in_thread(victim.wait_ready, 300.0)
        return (
            f"{victim.name} down {RESTART_AFTER:g} s, ready {time.monotonic() - began:.1f} s after"
        )

    async def rolling_restart(self) -> str:
        took = []
        for worker in self.system.workers:
            began = time.monotonic()
            await in_thread(worker.stop)
            worker.start()
            await in_thread(worker.wait_ready, 300.0)
            took.append(f"{worker.name} {time.monotonic() - began:.1f} s")
        return "stop to ready: " + ", ".join(took)

    async def crash_for_good(self) -> str:
        victim = self.system.workers[1]
        victim.kill(signal.SIGKILL)
        return f"{victim.name} stays down"

    async def phase(self, name: str, fault: Callable[[], Awaitable[str]]) -> None:
        await asyncio.sleep(self.args.settle)
        phase = Phase(name, time.monotonic())
        self.say(f"{name} ...")
        phase.note = await fault()
        await asyncio.sleep(self.args.settle)
        phase.end = time.monotonic()
        self.phases.append(phase)
        self.say(f"{name}: {phase.note}")

    # --- the run ------------------------------------------------------------------

    async def run(self) -> int:
        try:
            return await self._run()
        finally:
            await in_thread(self.system.stop)

    async def _run(self) -> int:
        args, system = self.args, self.system
        self.began = time.monotonic()
        for _ in range(2):
            system.worker()
        for worker in system.workers:
            await in_thread(worker.wait_ready, 300.0)
        urls = [w.url for w in system.workers]
        accounts = [f"failover-{n:03d}" for n in range(args.accounts)]

        async def short_waits(seconds: float) -> None:
            await asyncio.sleep(min(seconds, RETRY_WAIT))

        async with ApiClient(
            urls,
            timeout=30.0,
            tally=self.recorder,
            max_attempts=SOAK_ATTEMPTS * 20,
            sleep=short_waits,
        ) as client:
            for account in accounts:
                await client.command("/accounts", {"account_id": account, "owner": account})
            self.recorder.done.clear()
            self.say(
                f"two workers ready; deposits at {args.rate:g}/s over {args.accounts} accounts"
            )
            stop = asyncio.Event()
            load = asyncio.create_task(self.traffic(client, accounts, stop))
            await self.phase("crash and restart", self.crash_and_restart)
            await self.phase("rolling restart", self.rolling_restart)
            await self.phase("crash for good", self.crash_for_good)
            stop.set()
            await load
        self.say("traffic stopped; reading the log from Kafka and auditing it")
        log = await read_log(system.bootstrap, f"{system.id}.", PARTITIONS)
        audit, _ = audit_log(log, self.recorder.done)
        accepted = sum(1 for c in self.recorder.done if c.status == 201)
        deposits = sum(1 for e in log["accounts.events"] if e.event_type == "MoneyDeposited")
        audit.check(
            "each accepted deposit in the log once, and no other",
            deposits == accepted,
            f"{deposits} MoneyDeposited events, {accepted} deposits answered 201",
        )
        report = self.figures()
        print(render(report))
        print("audit (against the topics read straight from Kafka):")
        print(audit.report())
        if args.json:
            text = json.dumps(report, indent=2) + "\n"
            await in_thread(Path(args.json).write_text, text)
        failed = sum(p["failed"] for p in report["phases"])
        verdict = audit.ok and failed == 0
        print(f"failover: {'PASSED' if verdict else 'FAILED'} ({failed} commands failed)")
        return 0 if verdict else 1

    async def traffic(self, client: ApiClient, accounts: list[str], stop: asyncio.Event) -> None:
        """Open loop: deposit i is sent at i / rate s whatever became of the others."""
        sent: set[asyncio.Task[int | None]] = set()
        began = time.monotonic()
        i = 0
        while not stop.is_set():
            account = accounts[i % len(accounts)]
            task = asyncio.create_task(
                client.command(f"/accounts/{account}/deposits", {"amount": "1.00"})
            )
            sent.add(task)
            task.add_done_callback(sent.discard)
            i += 1
            await asyncio.sleep(max(0.0, began + i / self.args.rate - time.monotonic()))
        if sent:
            await asyncio.gather(*sent)

    def figures(self) -> dict[str, Any]:
        phases = []
        for phase in self.phases:
            mine = [c for c in self.recorder.done if phase.start <= c.started < phase.end]
            waits = sorted(c.ended - c.started for c in mine)
            phases.append(
                {
                    "phase": phase.name,
                    "note": phase.note,
                    "commands": len(mine),
                    "longest_s": round(waits[-1], 2) if waits else 0.0,
                    "p99_s": round(percentile(waits, 0.99), 2),
                    "p50_s": round(percentile(waits, 0.50), 3),
                    "retried": sum(1 for c in mine if c.attempts > 1),
                    "failed": sum(1 for c in mine if gave_up(c)),
                }
            )
        return {"rate": self.args.rate, "settle_s": self.args.settle, "phases": phases}


def render(report: dict[str, Any]) -> str:
    lines = [
        f"\nfailover, deposits at {report['rate']:g}/s; each phase from the fault to "
        f"{report['settle_s']:g} s after it",
        f"  {'phase':<20} {'commands':>8} {'longest':>9} {'p99':>8} {'p50':>8} "
        f"{'retried':>8} {'failed':>7}  what happened",
    ]
    for p in report["phases"]:
        lines.append(
            f"  {p['phase']:<20} {p['commands']:>8} {p['longest_s']:>8.2f}s {p['p99_s']:>7.2f}s "
            f"{p['p50_s']:>7.3f}s {p['retried']:>8} {p['failed']:>7}  {p['note']}"
        )
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.failover", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--rate", type=float, default=20.0, help="deposits/s (default 20)")
    parser.add_argument("--accounts", type=int, default=40, help="accounts (default 40)")
    parser.add_argument(
        "--settle", type=float, default=20.0, help="steady seconds around each fault (20)"
    )
    parser.add_argument("--json", help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="shop-failover-"))
    try:
        return asyncio.run(Failover(args, workdir).run())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
