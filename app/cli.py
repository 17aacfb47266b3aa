"""`shop`: command-line tools around a running shop.

    shop traffic --url http://127.0.0.1:6066 --rate 5 --accounts 20 [--duration 60]
                                  (sample shop traffic, app/traffic_cli.py)
    shop load ...                 (orders at a target rate, app/load.py)
    shop dead-letters list|retry  (app/dead_letters_cli.py)
    shop rebuild accounts|analytics|orders|stock|timeline  (app/rebuild_cli.py)
    shop worker [--port N] [--data-dir DIR] [--instance-id NAME]  (app/worker_cli.py)
    shop health|lag [--url URL] [--json]  (app/ops_cli.py)
    shop leave NAME...            (stopped workers leave the group: app/leave_cli.py)
    shop --version

Each subcommand is one `add_<name>_parser` function plus its runner, so a new
one slots in without touching the others; `build_parser()` is the whole tree
(tests/unit/test_cli_help.py checks every parser's help against it). Their modules
are imported when the tree is built, not with this one: `shop worker` becomes the
worker at once, without the HTTP clients' imports (0.45 s of every restart).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import metadata

from app import worker_cli

DESCRIPTION = """\
Command-line tools around a running shop. worker runs one; traffic, load,
dead-letters, health and lag talk to a worker's HTTP API; rebuild and leave talk
to Kafka directly.
"""


def installed_version() -> str:
    """The version of the installed `shop` package (its metadata, not the source tree)."""
    try:
        return metadata.version("shop")
    except metadata.PackageNotFoundError:  # a source tree never installed
        return "unknown (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    from app.dead_letters_cli import add_dead_letters_parser
    from app.leave_cli import add_leave_parser
    from app.load import add_load_parser
    from app.ops_cli import add_ops_parsers
    from app.rebuild_cli import add_rebuild_parser
    from app.traffic_cli import add_traffic_parser

    parser = argparse.ArgumentParser(
        prog="shop",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"shop {installed_version()}",
        help="print the installed package's version and exit",
    )
    subparsers = parser.add_subparsers(
        dest="command",
        required=True,
        title="commands",
        metavar="COMMAND",
        help="`shop COMMAND --help` tells what it does, what it prints and its exit status",
    )
    worker_cli.add_worker_parser(subparsers)
    add_ops_parsers(subparsers)
    add_traffic_parser(subparsers)
    add_load_parser(subparsers)
    add_dead_letters_parser(subparsers)
    add_rebuild_parser(subparsers)
    add_leave_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:  # the same parser, without building the others'
        return worker_cli.main(argv[1:])
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
