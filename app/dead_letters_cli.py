"""`shop dead-letters list|retry`: the dead-letter endpoints from the command line.

    shop dead-letters list [--topic T] [--error TEXT] [--limit N] [--all] [--json]
    shop dead-letters retry ID [ID ...]

It talks to any worker over HTTP (`shop dead-letters --url URL list`, default
$SHOP_URL or http://127.0.0.1:6066) and sends $API_TOKEN when set, like any
other client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from app.http_client import Answer, ApiClient, Unreachable
from app.load import positive_int, token_or_environment
from app.settings import CommandLineSettings

TIMEOUT = 30.0


def _client(args: argparse.Namespace) -> ApiClient:
    return ApiClient(args.url, token=token_or_environment(None), timeout=TIMEOUT)


def _error(answer: Answer) -> str:
    try:
        body = answer.json()
        return f"{answer.status} {body.get('error')}: {body.get('reason')}"
    except ValueError:
        return f"{answer.status}: {answer.text[:200]}"


async def fetch_dead_letters(
    client: ApiClient, topic: str | None, error: str | None, limit: int, every_page: bool
) -> list[dict[str, Any]]:
    """Dead letters in id order, one page or every page."""
    params: dict[str, Any] = {"limit": min(limit, 1000)}
    if topic:
        params["topic"] = topic
    if error:
        params["error"] = error
    letters: list[dict[str, Any]] = []
    while True:
        answer = await client.get("/ops/dead-letters", params=params)
        if answer.status != 200:
            raise RuntimeError(_error(answer))
        body = answer.json()
        letters.extend(body["dead_letters"])
        if not every_page and len(letters) >= limit:
            return letters[:limit]
        if not body["next_after"]:
            return letters
        params["after"] = body["next_after"]


def summary_line(letter: dict[str, Any]) -> str:
    where = f"{letter['source_topic']}[{letter['partition']}]@{letter['offset']}"
    cause = f"{letter['error_type']}: {letter['error']}".replace("\n", " ")
    tried = f"{letter['agent']} x{letter['attempts']}"
    return f"{letter['id']}  {letter['status']:<8}  {where}  {tried}  {cause[:120]}"


def run_list(args: argparse.Namespace) -> int:
    async def fetch() -> list[dict[str, Any]]:
        async with _client(args) as client:
            return await fetch_dead_letters(client, args.topic, args.error, args.limit, args.all)

    try:
        letters = asyncio.run(fetch())
    except (RuntimeError, Unreachable) as exc:
        print(f"shop dead-letters: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(letters, indent=2))
        return 0
    for letter in letters:
        print(summary_line(letter))
    print(f"{len(letters)} dead letter(s)", file=sys.stderr)
    return 0


async def retry(args: argparse.Namespace) -> int:
    """How many of the ids could not be re-driven."""
    failed = 0
    async with _client(args) as client:
        for letter_id in args.ids:
            try:
                answer = await client.post(f"/ops/dead-letters/{letter_id}/retry")
            except Unreachable as exc:
                print(f"{letter_id}: {exc}", file=sys.stderr)
                failed += 1
                continue
            if answer.status == 200:
                print(f"{letter_id}: re-driven to {answer.json()['source_topic']}")
            else:
                print(f"{letter_id}: {_error(answer)}", file=sys.stderr)
                failed += 1
    return failed


def run_retry(args: argparse.Namespace) -> int:
    """Re-drive each id; exit 1 if any could not be (not found, already re-driven...)."""
    return 1 if asyncio.run(retry(args)) else 0


DESCRIPTION = """\
The dead letters: messages an agent could not process, kept with their error
and original bytes, to be re-driven to their source topic once the cause is
fixed.

Talks to any worker's HTTP API (--url, given before the action:
`shop dead-letters --url URL list`); $API_TOKEN is sent as a bearer token when
set (retry needs it when the workers require one).
"""

LIST_DESCRIPTION = """\
Lists dead letters, filtered by source topic and error text (GET
/ops/dead-letters, page by page). They come in id order, i.e. by
`topic:partition:offset:agent` compared as text (not by time).

Talks to a worker's HTTP API, the one named before the action:
`shop dead-letters --url URL list`.

Prints one line per letter on stdout (id, status, topic[partition]@offset,
agent x attempts, error) and the count on stderr; with --json, the full records
as one JSON array on stdout instead.
Exit status: 0; 1 when the worker cannot be reached or answers with an error
(printed on stderr).
"""

RETRY_DESCRIPTION = """\
Re-drives dead letters: for each ID, POST /ops/dead-letters/ID/retry sends the
letter's original bytes back to its source topic, once (a letter re-driven
already is refused). If the cause is not fixed, the message is dead-lettered
again, under a new id.

Talks to a worker's HTTP API, the one named before the action:
`shop dead-letters --url URL retry ID`; $API_TOKEN is sent when set.

Prints `ID: re-driven to TOPIC` on stdout for each one re-driven, and the
worker's answer on stderr for each one not.
Exit status: 0 when every ID was re-driven; 1 when any was not (not found,
re-driven already, not confirmed in time, no answer).
"""


def add_dead_letters_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dead-letters",
        help="list dead letters or re-drive them to their source topic (over HTTP)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        default=CommandLineSettings().shop_url,
        help="any worker's base URL, $SHOP_URL when set (default: %(default)s)",
    )
    actions = parser.add_subparsers(
        dest="action",
        required=True,
        title="actions",
        metavar="ACTION",
        help="`shop dead-letters ACTION --help` tells more",
    )
    listing = actions.add_parser(
        "list",
        help="list dead letters in id order, filtered by topic or error",
        description=LIST_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument(
        "--topic", metavar="TOPIC", help="only those from this source topic (its full name)"
    )
    listing.add_argument(
        "--error",
        metavar="TEXT",
        help="only those whose error type or message contains this text, ignoring case",
    )
    listing.add_argument(
        "--limit",
        type=positive_int,
        default=100,
        metavar="N",
        help="at most this many; with --all, how many each request fetches, up to 1000 "
        "(default: %(default)s)",
    )
    listing.add_argument(
        "--all", action="store_true", help="every matching dead letter, whatever --limit says"
    )
    listing.add_argument(
        "--json", action="store_true", help="print the full records as one JSON array"
    )
    listing.set_defaults(run=run_list)
    retry = actions.add_parser(
        "retry",
        help="send dead letters' original bytes back to their source topic, once each",
        description=RETRY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    retry.add_argument(
        "ids", nargs="+", metavar="ID", help="a dead letter's id, as `list` prints it first"
    )
    retry.set_defaults(run=run_retry)
