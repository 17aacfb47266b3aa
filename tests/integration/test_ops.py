"""Operations against the real broker: consumer lag from Kafka's offsets, health that
degrades past the lag threshold and recovers, Prometheus metrics (and the board's and
alert rules' queries against them), event contracts.

The worker is frozen (SIGSTOP) while a burst of commands is written straight to
its command topic, so the group's committed offsets fall behind the end offsets
by a known amount; after SIGCONT it catches up.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from app import cli
from bench.accounts import make_events, produce
from models.envelope import CommandEnvelope
from tests.system import ROOT, System, Worker

pytestmark = pytest.mark.integration

THRESHOLD = 50
BURST = 50_000
"""Commands written while the worker is stopped: more than it decides before the lag is
measured again (its accounts service decides them in batches, several thousand a second)."""
PARTITIONS = 2
INPUT_TOPICS = (
    "accounts.commands",
    "orders.commands",
    "orders.events",
    "payments.events",
    "inventory.commands",
    "reservations.events",
    "shipping.events",
)
"""Topics some agent reads (the answer topics too, where a service reads them)."""


@pytest.fixture(scope="module")
def ops_system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    shop = System(
        tmp_path_factory.mktemp("ops"),
        partitions=PARTITIONS,
        LAG_DEGRADED_THRESHOLD=str(THRESHOLD),
    )
    yield shop
    shop.stop()


@pytest.fixture(scope="module")
def node(ops_system: System) -> Worker:
    return ops_system.worker().wait_ready()


@pytest.fixture(scope="module")
def api(node: Worker) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=30.0) as client:
        yield client


def wait_for(
    fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fetch()
            if done(last):
                return last
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen within {timeout}s; last: {last}")


def open_accounts(system: System, count: int) -> None:
    """`count` OpenAccount commands written straight to the command topic (no replies)."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, linger_ms=5)
        await producer.start()
        try:
            pending = []
            for n in range(count):
                command = CommandEnvelope(
                    command_id=str(uuid.uuid4()),
                    command_type="OpenAccount",
                    aggregate_id=f"burst{n}",
                    payload={"owner": f"Burst {n}"},
                    correlation_id=f"burst-{n}",
                )
                pending.append(
                    await producer.send(
                        system.topic("accounts.commands"),
                        command.model_dump_json().encode(),
                        key=command.aggregate_id.encode(),
                    )
                )
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    asyncio.run(send())


def metric_values(text: str, name: str) -> dict[str, float]:
    """label string -> value for every sample of `name`."""
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return {labels or "": float(value) for labels, value in pattern.findall(text)}


def request_counts(text: str) -> dict[tuple[str, str, str], float]:
    """(route, method, code) -> requests served, from the HTTP histogram's counts."""
    return {
        (sample.labels["route"], sample.labels["method"], sample.labels["code"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "shop_http_request_duration_seconds_count"
    }


def test_lag_lists_every_input_partition(ops_system: System, api: httpx.Client) -> None:
    response = api.get("/ops/lag")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group"] == ops_system.id
    assert body["threshold"] == THRESHOLD
    seen = {(p["topic"], p["partition"]) for p in body["partitions"]}
    for name in INPUT_TOPICS:
        for partition in range(PARTITIONS):
            assert (ops_system.topic(name), partition) in seen, (name, partition)
    for row in body["partitions"]:
        assert row["lag"] >= 0 and row["end"] >= 0
        assert row["committed"] is None or row["committed"] >= 0
    assert body["total"] == sum(p["lag"] for p in body["partitions"])
    # every reader on the engine reports its own place: every partition of its topics
    assert set(body["readers"]) == {
        "accounts-projection",
        "stock-projection",
        "orders-projection",
        "orders-timeline",
        "analytics-facts",
        "analytics",
        "dead-letters",
        "saga",
    }
    assert {p["reader"] for p in body["partitions"]} <= set(body["readers"])
    timeline = body["readers"]["orders-timeline"]
    assert len(timeline) == 4 * PARTITIONS  # four topics, every partition
    # a fold of a one-partition topic: that partition alone
    for single, topic in (("analytics", "analytics.facts"), ("dead-letters", "deadletters")):
        rows = body["readers"][single]
        assert [(r["topic"], r["partition"]) for r in rows] == [(ops_system.topic(topic), 0)]
    for row in (r for rows in body["readers"].values() for r in rows):
        assert row["offset"] >= 0 and (row["lag"] is None or row["lag"] >= 0), row


def test_shop_health_and_lag_say_what_the_worker_says(
    ops_system: System, node: Worker, capsys: pytest.CaptureFixture[str]
) -> None:
    wait_for(
        lambda: httpx.get(f"{node.url}/ops/health").json(), lambda b: b["status"] == "ok", 60, "ok"
    )
    capsys.readouterr()
    assert cli.main(["health", "--url", node.url, "--json"]) == 0  # ok
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "ok" and body["lag"]["threshold"] == THRESHOLD
    assert body["partitions"] == list(range(PARTITIONS))  # the only worker owns them all
    assert cli.main(["lag", "--url", node.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("consumer lag ") and f"group {ops_system.id}" in lines[0]
    rows = {tuple(line.split()[:2]) for line in lines}
    for name in INPUT_TOPICS:
        for partition in range(PARTITIONS):
            assert (ops_system.topic(name), str(partition)) in rows, (name, partition)
    assert any(line.split()[:1] == ["dead-letters"] for line in lines)  # a fold on it


def test_metrics_count_processed_events_and_answers(api: httpx.Client) -> None:
    opened = api.post("/accounts", json={"account_id": "m1", "owner": "Metrics"})
    assert opened.status_code == 201, opened.text
    assert api.post("/accounts/m1/deposits", json={"amount": "10.00"}).status_code == 201
    refused = api.post("/accounts/m1/withdrawals", json={"amount": "99.00"})
    assert refused.status_code == 409, refused.text
    assert api.get("/accounts/m1", params={"min_version": 2}).status_code == 200

    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "shop_events_processed_total",
        "shop_event_handling_seconds_bucket",
        "shop_dead_letters_total",
        "shop_command_results_total",
        "shop_consumer_lag_messages",
        "shop_reader_lag_messages",
        "shop_reader_lag_seconds",
        "shop_lag_degraded",
        "shop_table_keys_estimate",
        "shop_http_request_duration_seconds_bucket",
        "shop_worker_state",
        "shop_build_info",
        "shop_dead_letters_open",
        "shop_saga_open_orders_limit",
        "shop_saga_refused_orders_total",
    ):
        assert f"# TYPE {name.removesuffix('_bucket').removesuffix('_total')}" in text, name
    processed = metric_values(text, "shop_events_processed_total")
    assert processed.get('{agent="account-commands"}', 0) >= 2, processed  # the rejection: none
    assert processed.get('{agent="accounts-projection"}', 0) >= 2, processed
    answers = metric_values(text, "shop_command_results_total")
    assert answers.get('{command_type="OpenAccount",status="201"}', 0) >= 1, answers
    assert answers.get('{command_type="WithdrawMoney",status="409"}', 0) >= 1, answers
    lag = metric_values(text, "shop_consumer_lag_messages")
    assert len(lag) >= len(INPUT_TOPICS) and all(v >= 0 for v in lag.values()), lag
    # the old names are gone (a gauge named like a counter, lag without its unit)
    for gone in ("shop_consumer_lag_total_messages", "shop_consumer_lag{", "shop_fold_lag{"):
        assert gone not in text, gone
    reader_lag = metric_values(text, "shop_reader_lag_seconds")
    assert '{reader="orders-timeline"}' in reader_lag, reader_lag
    assert all(v >= 0 for v in reader_lag.values()), reader_lag
    # requests by route pattern (not the raw path), method and status
    requests = request_counts(text)
    assert requests.get(("/accounts/{account_id}/withdrawals", "POST", "409"), 0) >= 1, requests
    assert requests.get(("/accounts/{account_id}", "GET", "200"), 0) >= 1, requests
    assert not any("m1" in route for route, _, _ in requests), requests
    api.get("/no/such/path")
    requests = request_counts(api.get("/metrics").text)
    assert requests.get(("unmatched", "GET", "404"), 0) >= 1, requests
    assert metric_values(text, "shop_worker_state") == {
        '{state="starting"}': 0,
        '{state="running"}': 1,
        '{state="rebalancing"}': 0,
        '{state="stalled"}': 0,
    }
    (build,) = metric_values(text, "shop_build_info")
    versions = r'\{aiokafka="[^"]+",faust="[^"]+",python="3[^"]+",version="[^"]+"\}'
    assert re.fullmatch(versions, build), build
    assert metric_values(text, "shop_dead_letters_open") == {"": 0}
    assert metric_values(text, "shop_saga_open_orders_limit") == {"": 48}
    sizes = metric_values(text, "shop_table_keys_estimate")
    assert any('table="account-commands"' in labels for labels in sizes), sizes
    assert any('table="accounts-projection"' in labels for labels in sizes), sizes


def test_health_degrades_under_lag_and_recovers(
    ops_system: System, node: Worker, api: httpx.Client
) -> None:
    wait_for(lambda: api.get("/ops/health").json(), lambda b: b["status"] == "ok", 60, "ok")
    assert api.get("/ops/ready").status_code == 200
    assert node.process is not None
    node.process.send_signal(signal.SIGSTOP)
    try:
        open_accounts(ops_system, BURST)
    finally:
        node.process.send_signal(signal.SIGCONT)

    def probe() -> tuple[dict[str, Any], int]:
        return api.get("/ops/health").json(), api.get("/ops/ready").status_code

    # (this worker's own readers may say it is behind before the lag's next measurement)
    degraded, _ = wait_for(
        probe,
        lambda r: r[0]["status"] == "degraded" and r[1] == 503 and r[0]["lag"]["total"],
        60,
        "degraded health",
    )
    assert degraded["lag"]["total"] > THRESHOLD
    assert degraded["lag"]["threshold"] == THRESHOLD
    assert degraded["lag"]["degraded"] is True

    recovered = wait_for(
        lambda: api.get("/ops/health").json(), lambda b: b["status"] == "ok", 180, "recovery"
    )
    assert recovered["lag"]["total"] <= THRESHOLD
    assert api.get("/ops/ready").status_code == 200
    assert api.get("/health").status_code == 200
    # the timer logs each crossing once (it measures every few seconds)
    log = wait_for(
        lambda: node.log_path.read_text(errors="replace"),
        lambda text: f"is back under LAG_DEGRADED_THRESHOLD {THRESHOLD}" in text,
        30,
        "the recovery log line",
    )
    assert log.count(f"is above LAG_DEGRADED_THRESHOLD {THRESHOLD}") == 1
    # every burst command was decided, its event appended and folded, and counted
    processed = metric_values(api.get("/metrics").text, "shop_events_processed_total")
    assert processed.get('{agent="account-commands"}', 0) >= BURST


def test_contracts_list_order_placed_versions(api: httpx.Client) -> None:
    index = api.get("/contracts")
    assert index.status_code == 200
    rows = {row["event_type"]: row for row in index.json()["events"]}
    assert rows["OrderPlaced"]["versions"] == [1, 2, 3]
    assert rows["OrderPlaced"]["current_version"] == 3
    assert rows["MoneyDeposited"]["context"] == "accounts"
    one = api.get("/contracts/OrderPlaced")
    assert one.status_code == 200
    versions = one.json()["versions"]
    assert set(versions) == {"1", "2", "3"}
    assert "discount" not in versions["1"]["properties"]
    assert "shipping_address" in versions["3"]["properties"]
    missing = api.get("/contracts/NoSuchEvent")
    assert missing.status_code == 404
    assert missing.json()["error"] == "unknown_event_type"


def test_health_degrades_while_a_fold_is_behind_its_log(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The folds' own lag counts: a fold stalled on its first batch (fault point) while
    events wait makes health degraded, naming the lag; it is ok again once caught up."""
    system = System(
        tmp_path_factory.mktemp("fold-lag"),
        partitions=PARTITIONS,
        LAG_DEGRADED_THRESHOLD=str(THRESHOLD),
        SHOP_FAULT="fold-batch:stall:12",
    )
    try:
        worker = system.worker().wait_ready(timeout=240)
        api = httpx.Client(base_url=worker.url, timeout=30.0)
        work = make_events(400, 40, uuid.uuid4().hex[:6])
        asyncio.run(produce(system.bootstrap, system.topic("accounts.events"), work.records))

        wait_for(
            lambda: api.get("/ops/health").json(),
            lambda b: b["status"] == "degraded" and b["reader_lag"] > THRESHOLD,
            30,
            "degraded by the fold's lag",
        )
        report = api.get("/ops/lag").json()
        folds = report["readers"]["accounts-projection"]
        assert sum(row["lag"] or 0 for row in folds) > THRESHOLD
        behind = {p["reader"] for p in report["partitions"] if p["lag"]}
        assert "accounts-projection" in behind  # the one notion of lag names the reader
        wait_for(
            lambda: api.get("/ops/health").json(),
            lambda b: b["status"] == "ok" and b["reader_lag"] == 0,
            60,
            "caught up",
        )
        assert "fault fold-batch: stalling 12.0s" in worker.tail(300)
    finally:
        system.stop()


BOARD = ROOT / "ops" / "grafana" / "shop.json"
RULES = ROOT / "ops" / "prometheus" / "alerts.yml"
GRAFANA_RANGES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
"""Grafana's own variables, as a Prometheus query would receive them."""
MADE_BY_PROMETHEUS = {"up"}
"""Series Prometheus adds to every scrape: in no /metrics page."""
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan",
}  # fmt: skip


def board_queries() -> list[str]:
    board = json.loads(BOARD.read_text())
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for name, value in GRAFANA_RANGES.items():
        queries = [q.replace(name, value) for q in queries]
    return queries


def rule_queries() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query reads: its identifiers, less strings, label
    matchers, ranges, grouping lists, functions and keywords."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", query)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"\b[a-z_]+\s*\(", "(", bare)  # functions and aggregations
    words = set(re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return words - PROMQL_WORDS


def exported_names(text: str) -> set[str]:
    """Every sample name a /metrics page declares, whether or not it has samples yet (a
    labelled metric with no child has its TYPE line only)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_metric_names_are_found_in_promql() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{code=~"5.."}[1m])))'
        " / on(instance) group_left b_total offset 5m > bool 0 or max(c) without (x)"
    ) == {"a_bucket", "b_total", "c"}


def test_every_board_and_alert_query_reads_exported_metrics_and_parses(
    api: httpx.Client, tmp_path: Path
) -> None:
    """Each panel of ops/grafana/shop.json and each rule of alerts.yml reads only metrics a
    live worker's /metrics declares, and each of their queries parses (promtool checks
    them, each wrapped as a recording rule)."""
    exported = exported_names(api.get("/metrics").text) | MADE_BY_PROMETHEUS
    queries = board_queries() + rule_queries()
    assert len(board_queries()) >= 15
    missing = {q: metric_names(q) - exported for q in queries if metric_names(q) - exported}
    assert missing == {}
    assert all(metric_names(q) for q in queries)
    wrapped = tmp_path / "board_rules.yml"
    rules = [{"record": f"board:query_{n}", "expr": q} for n, q in enumerate(queries)]
    wrapped.write_text(yaml.safe_dump({"groups": [{"name": "board", "rules": rules}]}))
    promtool = subprocess.run(
        [str(ROOT / "scripts" / "go-tool.sh"), "promtool"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    checked = subprocess.run(
        [promtool, "check", "rules", str(wrapped)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout, checked.stdout
