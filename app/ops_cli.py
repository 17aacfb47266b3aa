"""`shop health` and `shop lag`: what a worker's `/ops/health` and `/ops/lag` say.

    shop health [--url URL] [--json]
    shop lag [--url URL] [--json]

Readable tables by default (`render_health`, `render_lag`: pure, so a unit test
checks them on fixed answers), or the worker's own JSON with `--json`. A worker
that does not answer is one line on stderr and exit status 1, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from app.http_client import ApiClient, Unreachable
from app.load import positive_float, token_or_environment
from app.settings import CommandLineSettings

NOT_OK = 3
"""Exit status when the worker answered but is not ok (starting, degraded)."""


class Refused(Exception):
    """The worker answered, but not with what was asked (an error status, not JSON)."""


async def fetch(url: str, path: str, seconds: float) -> dict[str, Any]:
    """The JSON object the worker at `url` answers for GET `path` within `seconds`."""
    async with ApiClient(url, token=token_or_environment(None), timeout=seconds) as client:
        answer = await client.get(path)
    try:
        body = answer.json()
    except ValueError:
        raise Refused(f"{answer.status} from {url}{path}: {answer.text[:200]}") from None
    if answer.status != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        reason = body.get("reason") if isinstance(body, dict) else None
        raise Refused(f"{answer.status} {error}: {reason}" if error else f"{answer.status}")
    return body


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Aligned columns, numbers to the right; None shows as `-`."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[n]) for row in cells)]) for n, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[n], int | float) or row[n] is None for row in rows) and bool(rows)
        for n in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        padded = (
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    return [line(list(headers)), *(line(row) for row in cells)]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _ago(at: float, now: float) -> str:
    return f"{max(0.0, now - at):.0f}s ago"


def _age(measured_at: float | None, now: float) -> str:
    return "never measured" if measured_at is None else f"measured {_ago(measured_at, now)}"


def render_health(body: dict[str, Any], now: float | None = None) -> str:
    """`/ops/health` as an operator reads it: the verdict first, then why."""
    now = time.time() if now is None else now
    lag = body.get("lag") or {}
    catching_up = body.get("catching_up") or {}
    partitions = body.get("partitions") or []
    lines = [
        f"status       {body.get('status')}",
        f"web          {body.get('web')}",
        f"recovering   {_cell(body.get('recovering'))}",
        f"partitions   {' '.join(map(str, partitions)) or 'none'}"
        f" ({body.get('active_partitions')} active topic partitions)",
        "catching up  "
        + (
            "; ".join(f"{name} {list(parts)}" for name, parts in sorted(catching_up.items()))
            or "nothing"
        ),
        f"consumer lag {_cell(lag.get('total'))} (threshold {lag.get('threshold')}, "
        f"{'degraded' if lag.get('degraded') else 'under it'}, "
        f"{_age(lag.get('measured_at'), now)})",
        f"reader lag   {body.get('reader_lag')} (this worker's folds, summed)",
    ]
    if lag.get("error"):
        lines.append(f"lag error    {lag['error']}")
    stalled = body.get("stalled") or []
    if stalled:
        lines += ["", "stalled agents (held on a system error):"]
        lines += table(
            ("AGENT", "FAILURES", "SINCE", "ERROR"),
            [
                (s.get("agent"), s.get("failures"), _ago(s.get("since", now), now), s.get("error"))
                for s in stalled
            ],
        )
    else:
        lines.append("stalled      none")
    return "\n".join(lines)


def render_lag(body: dict[str, Any], now: float | None = None) -> str:
    """`/ops/lag`: the total against the threshold, each topic partition's slowest
    reader, and the folds on this worker."""
    now = time.time() if now is None else now
    verdict = "degraded" if body.get("degraded") else "ok"
    lines = [
        f"consumer lag {body.get('total')} (threshold {body.get('threshold')}): {verdict}, "
        f"group {body.get('group')}, {_age(body.get('measured_at'), now)}",
        "",
    ]
    lines += table(
        ("TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "SLOWEST READER"),
        [
            (p["topic"], p["partition"], p["committed"], p["end"], p["lag"], p.get("reader"))
            for p in body.get("partitions") or []
        ],
    )
    readers = body.get("readers") or {}
    rows = [
        (name, row["topic"], row["partition"], row["offset"], row["end"], row["lag"])
        for name, progress in sorted(readers.items())
        for row in progress
    ]
    lines += ["", "folds on this worker (stored offset, log end seen):"]
    lines += (
        table(("READER", "TOPIC", "PARTITION", "OFFSET", "END", "LAG"), rows) if rows else ["none"]
    )
    return "\n".join(lines)


def _show(
    args: argparse.Namespace,
    path: str,
    render: Callable[[dict[str, Any]], str],
    ok: Callable[[dict[str, Any]], bool],
) -> int:
    try:
        body = asyncio.run(fetch(args.url, path, args.timeout))
    except (Unreachable, Refused) as error:
        print(f"shop {args.command}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2) if args.json else render(body))
    return 0 if ok(body) else NOT_OK


def run_health(args: argparse.Namespace) -> int:
    return _show(args, "/ops/health", render_health, lambda body: body.get("status") == "ok")


def run_lag(args: argparse.Namespace) -> int:
    return _show(args, "/ops/lag", render_lag, lambda body: not body.get("degraded"))


HEALTH_DESCRIPTION = f"""\
What a worker says of its health (GET /ops/health): its status (starting, ok
or degraded), whether it is recovering, the partitions it owns, the command
sides and folds still catching up with their log, the consumer lag against
LAG_DEGRADED_THRESHOLD, its folds' own lag, and agents held on a system error.

Talks to one worker's HTTP API (--url).

Prints a table on stdout; with --json, the worker's answer as it came.
Exit status: 0 when the status is ok; {NOT_OK} when the worker answered starting or
degraded; 1 when it cannot be reached or answers with an error (one line on
stderr).
"""

LAG_DESCRIPTION = f"""\
The readers' lag, measured from Kafka's offsets (GET /ops/lag): the total
against LAG_DEGRADED_THRESHOLD; per topic partition, the slowest reader's
committed offset, the log end and the lag between them; and each fold on this
worker with its stored offset and the log end it last saw.

Talks to one worker's HTTP API (--url).

Prints tables on stdout; with --json, the worker's answer as it came.
Exit status: 0 when the total is within the threshold; {NOT_OK} when it is over it;
1 when the worker cannot be reached or answers with an error (503
lag_unavailable: Kafka did not answer it), one line on stderr.
"""


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=CommandLineSettings().shop_url,
        help="the worker's base URL, $SHOP_URL when set (default: %(default)s)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the worker's JSON answer instead of tables"
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait for the answer (default: %(default)s)",
    )


def add_ops_parsers(subparsers: Any) -> None:
    health = subparsers.add_parser(
        "health",
        help="a worker's health: status, partitions, lag, stalled agents (over HTTP)",
        description=HEALTH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(health)
    health.set_defaults(run=run_health)
    lag = subparsers.add_parser(
        "lag",
        help="consumer lag per topic partition and per fold, from Kafka's offsets (over HTTP)",
        description=LAG_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(lag)
    lag.set_defaults(run=run_lag)
