"""`make alerts-demo`: the alert rules in a real Prometheus, scraping two live workers.

Starts a shop of two workers on the broker, and a Prometheus (scripts/go-tool.sh
prometheus) with a generated configuration: the workers' ports, a 1 s scrape and
evaluation, and ops/prometheus/alerts.yml with every `for:` shortened to `FOR` (the
expressions are the repository's, unchanged). Then it breaks things on purpose and
follows Prometheus's `GET /api/v1/alerts`, printing each alert's changes:

1. a reader stalls: the workers run with `SHOP_FAULT=fold-batch:fail:STALL` (a fold's
   first batch meets a system error for that long; app/faults.py); one account opened
   gives the accounts projection its first batch: ShopReaderStalled fires, then
   resolves once the fault's time is over;
2. a worker stops (SIGTERM): ShopWorkerDown fires; it starts again: ShopWorkerDown
   resolves and ShopWorkerRestarted fires (and ShopWorkerNotReady while it starts, if
   that takes longer than `FOR`, resolved once it is ready).

Exits 1 if any of those is not seen within its time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.system import ROOT, System, free_port

RULES = ROOT / "ops" / "prometheus" / "alerts.yml"
FOR = "2s"
"""Every rule's `for:` in the demo (the repository's are minutes)."""
STALL = 12.0
"""Seconds the fault holds the first fold batch of each worker."""


def shortened_rules(rules: Path, hold: str) -> dict[str, Any]:
    """The rule file with each alert's `for:` replaced by `hold`."""
    document = yaml.safe_load(rules.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = hold
    return dict(document)


def prometheus_config(targets: list[str], rule_file: Path) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rule_file)],
        "scrape_configs": [{"job_name": "shop", "static_configs": [{"targets": targets}]}],
    }


class Alerts:
    """Follows Prometheus's active alerts and prints what changes, with the time."""

    def __init__(self, prometheus: httpx.Client) -> None:
        self.prometheus = prometheus
        self.started = time.monotonic()
        self.states: dict[str, str] = {}
        """An alert's name and labels -> pending or firing (absent: not active)."""
        self.seen: list[tuple[str, str]] = []

    def say(self, text: str) -> None:
        print(f"{time.monotonic() - self.started:7.1f}s  {text}", flush=True)

    def poll(self) -> None:
        alerts = self.prometheus.get("/api/v1/alerts").json()["data"]["alerts"]
        now: dict[str, str] = {}
        for alert in alerts:
            labels = alert["labels"]
            shown = {k: v for k, v in sorted(labels.items()) if k not in ("alertname", "job")}
            key = f"{labels['alertname']}{shown}"
            now[key] = alert["state"]
        for key, state in now.items():
            if self.states.get(key) != state:
                self.say(f"{state:8} {key}")
                self.seen.append((key.split("{")[0], state))
        for key in set(self.states) - set(now):
            self.say(f"{'resolved':8} {key}")
            self.seen.append((key.split("{")[0], "resolved"))
        self.states = now

    def wait(self, alert: str, state: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if (alert, state) in self.seen:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{alert} not {state} within {timeout:.0f}s")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} not seen within {timeout:.0f}s")


def run(workdir: Path) -> None:
    binary = subprocess.run(
        [str(ROOT / "scripts" / "go-tool.sh"), "prometheus"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shop = System(workdir, partitions=4, SHOP_FAULT=f"fold-batch:fail:{STALL}")
    prometheus_process = None
    try:
        print("starting two workers", flush=True)
        workers = [shop.worker("w1"), shop.worker("w2")]
        for worker in workers:
            worker.wait_ready(timeout=180)
        rules = workdir / "alerts.yml"
        rules.write_text(yaml.safe_dump(shortened_rules(RULES, FOR)))
        config = workdir / "prometheus.yml"
        targets = [f"127.0.0.1:{w.port}" for w in workers]
        config.write_text(yaml.safe_dump(prometheus_config(targets, rules)))
        port = free_port()
        log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - the child owns it
        prometheus_process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        prometheus = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0)
        print(f"prometheus on :{port} scraping {', '.join(targets)}", flush=True)

        def both_up() -> bool:
            result = prometheus.get("/api/v1/query", params={"query": 'up{job="shop"}'}).json()
            values = [r["value"][1] for r in result["data"]["result"]]
            return values == ["1", "1"]

        wait_until(both_up, 60, "both workers scraped")
        alerts = Alerts(prometheus)
        alerts.poll()
        alerts.say(f"both workers scraped; alerts active: {len(alerts.states)}")

        alerts.say(f"1. a reader stalls: one account opened (its first fold fails {STALL:.0f}s)")
        api = httpx.Client(base_url=workers[0].url, timeout=30.0)
        opened = api.post("/accounts", json={"account_id": "demo", "owner": "Demo"})
        alerts.say(f"POST /accounts answered {opened.status_code}")
        alerts.wait("ShopReaderStalled", "firing", 60)
        alerts.wait("ShopReaderStalled", "resolved", 60)

        alerts.say("2. worker w2 stops (SIGTERM)")
        workers[1].stop()
        alerts.wait("ShopWorkerDown", "firing", 60)
        alerts.say("worker w2 starts again")
        workers[1].start()
        alerts.wait("ShopWorkerDown", "resolved", 120)
        alerts.wait("ShopWorkerRestarted", "firing", 60)
        workers[1].wait_ready(timeout=180)
        if ("ShopWorkerNotReady", "firing") in alerts.seen:  # it took longer than FOR
            alerts.wait("ShopWorkerNotReady", "resolved", 60)
        alerts.say("every alert driven fired, and each cause's alert resolved: done")
    finally:
        if prometheus_process is not None:
            prometheus_process.terminate()
            prometheus_process.wait(timeout=30)
        shop.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, tsdb)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="alerts-demo-"))
    try:
        run(workdir)
    except (TimeoutError, RuntimeError) as error:
        print(f"alerts-demo failed: {error} (logs in {workdir})", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
