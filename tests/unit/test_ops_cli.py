"""`shop health`, `shop lag` and `shop worker` without a broker: health and lag against
a fake worker (a local aiohttp server answering what /ops/health and /ops/lag answer,
held to the documented models), and the faust command line `shop worker` execs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app import worker_cli
from app.cli import build_parser, main
from app.ops_cli import NOT_OK, render_health, render_lag, table
from web.answers import Health, LagReport

ROOT = Path(__file__).resolve().parents[2]

NOW = 1_800_000_000.0

HEALTH: dict[str, Any] = {
    "status": "degraded",
    "recovering": False,
    "catching_up": {"orders-projection": [3]},
    "active_partitions": 12,
    "partitions": [0, 1, 3],
    "web": "http://127.0.0.1:6066",
    "lag": {"total": 1234, "threshold": 1000, "degraded": True, "measured_at": NOW - 3},
    "stalled": [
        {"agent": "stock-service", "error": "KafkaTimeoutError()", "since": NOW - 42, "failures": 7}
    ],
    "reader_lag": 17,
}
LAG: dict[str, Any] = {
    "group": "shop",
    "measured_at": NOW - 1,
    "total": 5,
    "topics": {"shop.accounts.events": 5},
    "partitions": [
        {
            "topic": "shop.accounts.events",
            "partition": 0,
            "committed": 120,
            "end": 125,
            "lag": 5,
            "reader": "accounts-projection",
        },
        {
            "topic": "shop.accounts.events",
            "partition": 1,
            "committed": None,
            "end": 0,
            "lag": 0,
            "reader": None,
        },
    ],
    "threshold": 1000,
    "degraded": False,
    "readers": {
        "accounts-projection": [
            {"topic": "shop.accounts.events", "partition": 0, "offset": 120, "end": 125, "lag": 5}
        ],
        "analytics": [],
    },
}


def test_the_fake_answers_are_what_the_worker_documents() -> None:
    # the renderings below are checked on these: they must be the real shapes
    Health.model_validate(HEALTH)
    LagReport.model_validate(LAG)


def test_health_table_says_the_status_and_why() -> None:
    text = render_health(HEALTH, now=NOW)
    lines = text.splitlines()
    assert lines[0] == "status       degraded"
    assert "partitions   0 1 3 (12 active topic partitions)" in lines
    assert "catching up  orders-projection [3]" in lines
    assert "consumer lag 1234 (threshold 1000, degraded, measured 3s ago)" in lines
    assert "reader lag   17 (this worker's folds, summed)" in lines
    header = next(n for n, line in enumerate(lines) if line.startswith("AGENT"))
    assert lines[header].split() == ["AGENT", "FAILURES", "SINCE", "ERROR"]
    assert lines[header + 1].split() == [
        "stock-service",
        "7",
        "42s",
        "ago",
        "KafkaTimeoutError()",
    ]


def test_a_healthy_worker_reads_as_such() -> None:
    healthy = {
        **HEALTH,
        "status": "ok",
        "catching_up": {},
        "stalled": [],
        "lag": {"total": 0, "threshold": 1000, "degraded": False, "measured_at": None},
    }
    lines = render_health(healthy, now=NOW).splitlines()
    assert "catching up  nothing" in lines
    assert "stalled      none" in lines
    assert "consumer lag 0 (threshold 1000, under it, never measured)" in lines


def test_lag_tables_list_every_partition_and_fold() -> None:
    lines = render_lag(LAG, now=NOW).splitlines()
    assert lines[0] == ("consumer lag 5 (threshold 1000): ok, group shop, measured 1s ago")
    rows = [line.split() for line in lines]
    assert ["TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "SLOWEST", "READER"] in rows
    assert ["shop.accounts.events", "0", "120", "125", "5", "accounts-projection"] in rows
    assert ["shop.accounts.events", "1", "-", "0", "0", "-"] in rows  # never committed
    assert ["accounts-projection", "shop.accounts.events", "0", "120", "125", "5"] in rows
    assert not [row for row in rows if row and row[0] == "analytics"]  # nothing folded here


def test_table_aligns_numbers_right_and_text_left() -> None:
    assert table(("NAME", "N"), [("a", 5), ("long-name", 120)]) == [
        "NAME         N",
        "a            5",
        "long-name  120",
    ]


class FakeWorker:
    """Answers /ops/health and /ops/lag with what it is given."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {
            "/ops/health": (200, HEALTH),
            "/ops/lag": (200, LAG),
        }
        self.seen: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request.path)
        status, body = self.answers.get(request.path, (404, {"error": "not_found"}))
        if isinstance(body, str):
            return web.Response(status=status, text=body)
        return web.json_response(body, status=status)


@pytest.fixture
async def worker() -> AsyncIterator[tuple[FakeWorker, str]]:
    fake = FakeWorker()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


async def shop(*args: str) -> int:
    """`shop ARGS` as the command line runs it (its own event loop: in a thread)."""
    return await asyncio.to_thread(main, list(args))


async def test_health_prints_the_table_and_exits_by_the_status(
    worker: tuple[FakeWorker, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = worker
    assert await shop("health", "--url", url) == NOT_OK  # degraded
    out = capsys.readouterr().out
    assert out.startswith("status       degraded\n")
    assert fake.seen == ["/ops/health"]
    fake.answers["/ops/health"] = (200, {**HEALTH, "status": "ok"})
    assert await shop("health", "--url", url) == 0


async def test_json_is_the_workers_answer_as_it_came(
    worker: tuple[FakeWorker, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = worker
    assert await shop("health", "--url", url, "--json") == NOT_OK
    assert json.loads(capsys.readouterr().out) == HEALTH
    assert await shop("lag", "--url", url, "--json") == 0
    assert json.loads(capsys.readouterr().out) == LAG


async def test_lag_over_the_threshold_exits_not_ok(
    worker: tuple[FakeWorker, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = worker
    fake.answers["/ops/lag"] = (200, {**LAG, "total": 2000, "degraded": True})
    assert await shop("lag", "--url", url) == NOT_OK
    assert "consumer lag 2000 (threshold 1000): degraded" in capsys.readouterr().out


async def test_an_error_answer_is_one_line_and_exit_1(
    worker: tuple[FakeWorker, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = worker
    fake.answers["/ops/lag"] = (
        503,
        {"error": "lag_unavailable", "reason": "Kafka did not answer in 5s"},
    )
    assert await shop("lag", "--url", url) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "shop lag: 503 lag_unavailable: Kafka did not answer in 5s\n"
    fake.answers["/ops/health"] = (502, "<html>bad gateway</html>")
    assert await shop("health", "--url", url) == 1
    err = capsys.readouterr().err
    assert err.startswith("shop health: 502 from ") and err.count("\n") == 1


@pytest.mark.parametrize("command", ["health", "lag"])
def test_no_worker_is_one_line_and_exit_1(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--url", "http://127.0.0.1:9", "--timeout", "5"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"shop {command}: GET http://127.0.0.1:9/ops/")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


# --- shop worker -----------------------------------------------------------------------


def worker_args(*args: str) -> argparse.Namespace:
    return build_parser().parse_args(["worker", *args])


def test_worker_runs_faust_with_the_options() -> None:
    argv, env = worker_cli.worker_command(
        worker_args("--port", "6070", "--data-dir", "/tmp/w2", "--instance-id", "w2"),
        {"PATH": "/bin"},
    )
    assert argv == [
        sys.executable,
        "-m",
        "faust",
        "-A",
        "app.worker",
        "-D",
        "/tmp/w2",
        "-L",
        "uvloop",
        "worker",
        "-l",
        "info",
        "-p",
        "6070",
        "-h",
        "127.0.0.1",
    ]
    assert env == {"PATH": "/bin", "SHOP_INSTANCE_ID": "w2"}


def test_worker_defaults() -> None:
    # no options: the port of the settings, an instance id from the environment or the
    # port, a data dir named after it
    argv, env = worker_cli.worker_command(worker_args(), {})
    port = str(worker_cli.settings.web_port)
    assert argv[argv.index("-p") + 1] == port
    assert env["SHOP_INSTANCE_ID"] == f"worker-{port}"
    assert argv[argv.index("-D") + 1] == str(Path(".data") / f"worker-{port}")
    argv, env = worker_cli.worker_command(worker_args("-l", "debug"), {"SHOP_INSTANCE_ID": "b"})
    assert env["SHOP_INSTANCE_ID"] == "b"
    assert argv[argv.index("-D") + 1] == str(Path(".data") / "b")
    assert argv[argv.index("-l") + 1] == "debug"


@pytest.mark.parametrize(
    ("bind", "host"),
    [("127.0.0.1", "127.0.0.1"), ("localhost", "127.0.0.1"), ("10.0.0.7", "10.0.0.7")],
)
def test_the_advertised_host_is_one_other_workers_can_reach(bind: str, host: str) -> None:
    assert worker_cli.advertised_host(bind) == host


def test_a_wildcard_bind_advertises_this_machines_name() -> None:
    with mock.patch.object(worker_cli.socket, "gethostname", return_value="node-7"):
        assert worker_cli.advertised_host("0.0.0.0") == "node-7"
    argv, _ = worker_cli.worker_command(worker_args("--host", "shop-1.internal"), {})
    assert argv[argv.index("-h") + 1] == "shop-1.internal"


def test_worker_replaces_this_process_with_faust(capsys: pytest.CaptureFixture[str]) -> None:
    with (
        mock.patch.object(worker_cli.os, "execve", side_effect=SystemExit(0)) as execve,
        pytest.raises(SystemExit),
    ):
        main(["worker", "--port", "6071", "--instance-id", "w9"])
    (executable, argv, env), _ = execve.call_args
    assert executable == sys.executable and argv[0] == sys.executable
    assert argv[argv.index("-p") + 1] == "6071"
    assert env["SHOP_INSTANCE_ID"] == "w9"
    assert capsys.readouterr().err.startswith("shop worker: -m faust -A app.worker")


def test_with_json_logs_the_line_worker_prints_first_is_json_too() -> None:
    # a collector reading the worker's stderr meets no line it cannot parse
    argv = [sys.executable, "-m", "faust", "-A", "app.worker"]
    json_logs = worker_cli.settings.model_copy(update={"log_format": "json"})
    with mock.patch.object(worker_cli, "settings", json_logs):
        line = json.loads(worker_cli.start_line(argv, "w9"))
    assert line["message"] == "shop worker: -m faust -A app.worker"
    assert line["worker"] == "w9" and line["level"] == "info"
    assert worker_cli.start_line(argv, "w9") != json.dumps(line)  # the text form is text


def test_shop_worker_imports_none_of_the_other_commands() -> None:
    # it becomes the worker at once: every restart would pay for the HTTP clients' imports
    code = (
        "import sys\n"
        "from unittest import mock\n"
        "from app import cli, worker_cli\n"
        "with mock.patch.object(worker_cli.os, 'execve', side_effect=SystemExit(0)):\n"
        "    try:\n"
        "        cli.main(['worker', '--port', '6071'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('aiohttp', 'httpx', 'app.http_client', 'app.traffic_cli')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert "shop worker: -m faust" in done.stderr
