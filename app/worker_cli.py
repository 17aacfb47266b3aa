"""`shop worker`: start a worker, as `faust -A app.worker -D DIR -L uvloop worker ...`
with the shop's defaults.

    shop worker [--port N] [--data-dir DIR] [--instance-id NAME] [--host HOST]

The command replaces itself with faust (`os.execve`): the worker keeps this
process's id, so a supervisor's signals reach it and its exit status is the
worker's. `worker_command` builds the argument list and environment (a unit
test checks it without starting anything).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from app.settings import settings

LOG_LEVELS = ("crit", "error", "warn", "info", "debug")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD = frozenset({"0.0.0.0", "::", ""})


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number from 1 to 65535")
    return value


def instance_name(text: str) -> str:
    if not text or any(c.isspace() or c == "/" for c in text) or len(text) > 128:
        raise argparse.ArgumentTypeError("1-128 characters, no spaces and no `/`")
    return text


def advertised_host(bind: str) -> str:
    """The host name other workers reach this one at (faust's canonical URL, which they
    forward requests to): the bind address itself, unless it is a wildcard."""
    if bind in LOOPBACK:
        return "127.0.0.1"
    if bind in WILDCARD:
        return socket.gethostname()
    return bind


def worker_command(
    args: argparse.Namespace, environ: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of the faust worker `args` ask for."""
    port = args.port if args.port is not None else settings.web_port
    instance = args.instance_id or environ.get("SHOP_INSTANCE_ID") or f"worker-{port}"
    datadir = args.data_dir if args.data_dir is not None else Path(".data") / instance
    host = args.host or advertised_host(settings.web_bind)
    argv = [
        sys.executable,
        "-m",
        "faust",
        "-A",
        "app.worker",
        "-D",
        str(datadir),
        # uvloop: a busy worker is mostly event loop and socket writes; on uvloop it
        # spends about 4 % less CPU per order (docs/benchmarks.md)
        "-L",
        "uvloop",
        "worker",
        "-l",
        args.log_level or "info",
        "-p",
        str(port),
        "-h",
        host,
    ]
    return argv, {**environ, "SHOP_INSTANCE_ID": instance}


def start_line(argv: list[str], instance: str) -> str:
    """The line saying what the command became: with LOG_FORMAT=json, one JSON object like
    every other line of the worker's log, so a collector never meets a line it cannot parse."""
    command = " ".join(argv[1:])
    if settings.log_format == "json":
        from app.logs import json_line  # imports faust: only for the JSON form

        return json_line("info", "shop.worker", f"shop worker: {command}", worker=instance)
    return f"shop worker: {command}"


def main(argv: list[str]) -> int:
    """`shop worker ARGV`, parsed by the same parser as in `shop`'s whole tree."""
    parser = argparse.ArgumentParser(prog="shop")
    add_worker_parser(parser.add_subparsers(dest="command", required=True))
    return run_worker(parser.parse_args(["worker", *argv]))


def run_worker(args: argparse.Namespace) -> int:
    argv, environment = worker_command(args, dict(os.environ))
    print(start_line(argv, environment["SHOP_INSTANCE_ID"]), file=sys.stderr, flush=True)
    os.execve(argv[0], argv, environment)  # returns only by raising
    return 1  # pragma: no cover


DESCRIPTION = """\
Runs one worker of the shop in the foreground: it joins the consumer group on
Kafka ($KAFKA_BOOTSTRAP_SERVERS, $SHOP_TOPIC_PREFIX and the other settings of
the environment), takes its share of the partitions, folds its read models
into --data-dir and serves the HTTP API on --port. Run one per core, each with
its own port, data dir and instance id.

The instance id is its static group membership (KIP-345): a worker restarted
under the same id within KAFKA_SESSION_TIMEOUT gets its partitions back with no
rebalance. Two live workers must never share one (nor a data dir).

It becomes `python -m faust -A app.worker -D DIR -L uvloop worker -l LEVEL -p
PORT -h HOST` (printed on stderr first): the same process, so SIGTERM or Ctrl-C
stops it gracefully and a supervisor sees the worker's own exit status. It binds
to $WEB_BIND (default 127.0.0.1).

Logs to stderr.
Exit status: 0 when stopped by SIGTERM or Ctrl-C; any other is the worker's
failure (see its log).
"""


def add_worker_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a worker in the foreground: Kafka consumer, folds and HTTP API (execs faust)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port",
        "-p",
        type=port_number,
        default=None,
        help="the HTTP API's port (omitted: $WEB_PORT, else 6066)",
    )
    parser.add_argument(
        "--data-dir",
        "-D",
        type=Path,
        default=None,
        metavar="DIR",
        help="where its read models live, one per worker (omitted: .data/INSTANCE_ID)",
    )
    parser.add_argument(
        "--instance-id",
        type=instance_name,
        default=None,
        metavar="NAME",
        help="its stable name in the group (omitted: $SHOP_INSTANCE_ID, else worker-PORT)",
    )
    parser.add_argument(
        "--host",
        default=None,
        help="the host name other workers reach it at (omitted: 127.0.0.1 when $WEB_BIND is "
        "a loopback address, this machine's name when it is 0.0.0.0, else $WEB_BIND)",
    )
    parser.add_argument(
        "--log-level",
        "-l",
        choices=LOG_LEVELS,
        default=None,
        help="debug: everything; info: start-up, partitions, dead letters; warn: retries and "
        "alerts; error: failures only; crit: fatal ones (omitted: info)",
    )
    parser.set_defaults(run=run_worker)
