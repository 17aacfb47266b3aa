"""`shop dead-letters ...`: the dead-letter endpoints from the command line.

    shop dead-letters list [FILTERS] [--status S] [--limit N] [--all] [--json]
    shop dead-letters retry ID [ID ...]
    shop dead-letters retry-matching [FILTERS] [--dry-run] [--through N]
    shop dead-letters resolve|discard ID [ID ...] --reason TEXT

FILTERS: --topic, --agent, --error-type, --error, --failed-after, --failed-before.
It talks to any worker over HTTP (`shop dead-letters --url URL list`, default
$SHOP_URL or http://127.0.0.1:6066) and sends $API_TOKEN when set, like any
other client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import Any, get_args

from app.http_client import Answer, ApiClient, Unreachable
from app.load import positive_int, token_or_environment
from app.settings import CommandLineSettings
from models.dead_letters import LetterStatus

TIMEOUT = 30.0
FILTERS = ("topic", "agent", "error_type", "error", "failed_after", "failed_before")
"""The filter options, by their query parameter's name (the option's with `-` for `_`)."""
STATUSES: tuple[str, ...] = get_args(LetterStatus)


def _client(args: argparse.Namespace) -> ApiClient:
    return ApiClient(args.url, token=token_or_environment(None), timeout=TIMEOUT)


def _error(answer: Answer) -> str:
    try:
        body = answer.json()
        return f"{answer.status} {body.get('error')}: {body.get('reason')}"
    except ValueError:
        return f"{answer.status}: {answer.text[:200]}"


def aware_time(text: str) -> str:
    """An ISO 8601 time with its zone (`2026-03-01T12:00:00Z`), as the worker takes it."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z or +HH:MM)")
    return parsed.isoformat()


def offset_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def filter_params(args: argparse.Namespace) -> dict[str, Any]:
    """The query parameters of the filter options given."""
    return {name: getattr(args, name) for name in FILTERS if getattr(args, name) is not None}


# --- list --------------------------------------------------------------------------


async def fetch_dead_letters(
    client: ApiClient, filters: dict[str, Any], limit: int, every_page: bool
) -> list[dict[str, Any]]:
    """Dead letters in id order, one page or every page."""
    params: dict[str, Any] = {**filters, "limit": min(limit, 1000)}
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
    line = f"{letter['id']}  {letter['status']:<9}  {where}  {tried}  {cause[:120]}"
    if letter.get("close_reason"):
        line += f"  ({letter['status']}: {letter['close_reason']})"
    return line


def run_list(args: argparse.Namespace) -> int:
    filters = filter_params(args)
    if args.status:
        filters["status"] = args.status

    async def fetch() -> list[dict[str, Any]]:
        async with _client(args) as client:
            return await fetch_dead_letters(client, filters, args.limit, args.all)

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


# --- retry ID ... ---------------------------------------------------------------------


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


# --- retry-matching -------------------------------------------------------------------


class Refused(Exception):
    pass


async def bulk(client: ApiClient, params: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post("/ops/dead-letters/retry", params=params)
    if answer.status != 200:
        raise Refused(_error(answer))
    return dict(answer.json())


async def retry_matching(args: argparse.Namespace) -> int:
    """Count first (a dry run, unless --through is given), then re-drive what was counted,
    a request of up to --limit letters at a time, all with the count's `through`."""
    filters = filter_params(args)
    async with _client(args) as client:
        counted: list[str] = []
        complete = False  # whether `counted` lists every letter counted
        through = args.through
        if through is None or args.dry_run:
            params = {**filters, "dry_run": "true", "limit": args.limit}
            if through is not None:
                params["through"] = through
            count = await bulk(client, params)
            counted, through, complete = count["ids"], count["through"], not count["remaining"]
            print(
                f"{count['matched']} dead letter(s) match, dead-lettered below offset "
                f"{through} of the dead-letter topic"
                + ("" if complete else f" (the first {len(counted)} listed)"),
                file=sys.stderr,
            )
            if args.dry_run:
                for letter_id in counted:
                    print(letter_id)
                print(
                    f"to re-drive exactly these: the same command with --through {through} "
                    "and without --dry-run",
                    file=sys.stderr,
                )
                return 0
            if not count["matched"]:
                return 0
        done: list[str] = []
        while True:
            answer = await bulk(client, {**filters, "through": through, "limit": args.limit})
            for letter_id in answer["ids"]:
                print(f"{letter_id}: re-driven")
            done += answer["ids"]
            if not answer["remaining"] or not answer["ids"]:
                break
    print(f"{len(done)} dead letter(s) re-driven", file=sys.stderr)
    changed = sorted(set(counted) - set(done)) if complete else []
    if changed:
        print(
            f"{len(changed)} counted were re-driven, resolved or discarded meanwhile: "
            + " ".join(changed),
            file=sys.stderr,
        )
    return 0


def run_retry_matching(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(retry_matching(args))
    except (Refused, Unreachable) as exc:
        print(f"shop dead-letters: {exc}", file=sys.stderr)
        return 1


# --- resolve / discard ------------------------------------------------------------------


async def close(args: argparse.Namespace) -> int:
    """How many of the ids could not be resolved (or discarded)."""
    failed = 0
    async with _client(args) as client:
        for letter_id in args.ids:
            try:
                answer = await client.post(
                    f"/ops/dead-letters/{letter_id}/{args.action}", params={"reason": args.reason}
                )
            except Unreachable as exc:
                print(f"{letter_id}: {exc}", file=sys.stderr)
                failed += 1
                continue
            if answer.status == 200:
                print(f"{letter_id}: {answer.json()['status']}")
            else:
                print(f"{letter_id}: {_error(answer)}", file=sys.stderr)
                failed += 1
    return failed


def run_close(args: argparse.Namespace) -> int:
    return 1 if asyncio.run(close(args)) else 0


# --- the parsers ----------------------------------------------------------------------

DESCRIPTION = """\
The dead letters: messages an agent could not process, kept with their error
and original bytes, to be re-driven to their source topic once the cause is
fixed, or resolved or discarded with a reason.

Talks to any worker's HTTP API (--url, given before the action:
`shop dead-letters --url URL list`); $API_TOKEN is sent as a bearer token when
set (retry, retry-matching, resolve and discard need it when the workers
require one).
"""

LIST_DESCRIPTION = """\
Lists dead letters, filtered by source topic, reader, error and time, and
state (GET /ops/dead-letters, page by page). They come in id order, i.e. by
`topic:partition:offset:agent` compared as text (not by time).

Talks to a worker's HTTP API, the one named before the action:
`shop dead-letters --url URL list`.

Prints one line per letter on stdout (id, status, topic[partition]@offset,
agent x attempts, error; and the reason of a resolved or discarded one) and the
count on stderr; with --json, the full records as one JSON array on stdout
instead.
Exit status: 0; 1 when the worker cannot be reached or answers with an error
(printed on stderr).
"""

RETRY_DESCRIPTION = """\
Re-drives dead letters: for each ID, POST /ops/dead-letters/ID/retry sends the
letter's original bytes back to its source topic, once (a letter re-driven,
resolved or discarded already is refused). If the cause is not fixed, the
message is dead-lettered again, under a new id.

Talks to a worker's HTTP API, the one named before the action:
`shop dead-letters --url URL retry ID`; $API_TOKEN is sent when set.

Prints `ID: re-driven to TOPIC` on stdout for each one re-driven, and the
worker's answer on stderr for each one not.
Exit status: 0 when every ID was re-driven; 1 when any was not (not found,
re-driven or closed already, not confirmed in time, no answer).
"""

RETRY_MATCHING_DESCRIPTION = """\
Re-drives every dead letter the filters match (no filter: every dead one),
once each, in the order they were dead-lettered; resolved, discarded and
re-driven letters are never taken.

It counts first (POST /ops/dead-letters/retry?dry_run=true): the worker answers
the ids that match and `through`, the dead-letter topic's offset it counted
below. With --dry-run it stops there and prints them. Otherwise it re-drives
with that `through` and the same filters, so exactly the letters counted are
re-driven (less any re-driven, resolved or discarded in between; a letter that
fails again comes back under a new id, past the bound, and is not taken twice).
--through N skips the count: give a dry run's, to re-drive what it listed.

Talks to a worker's HTTP API, the one named before the action:
`shop dead-letters --url URL retry-matching --topic T`; $API_TOKEN is sent
when set.

Prints the count on stderr, then the ids (dry run) or `ID: re-driven` for each
one on stdout, and the letters counted but no longer dead on stderr.
Exit status: 0 once done (none matching is done); 1 when the worker cannot be
reached or answers with an error (a filter it refuses, 504: re-driven but not
confirmed in time: list them to see).
"""

CLOSE_DESCRIPTION = """\
Marks dead letters {state}, with a reason (POST /ops/dead-letters/ID/{action}):
{meaning} The letter is kept, shown with its state and the reason, and never
re-driven by retry or retry-matching. Only a dead letter can be {state}.

Talks to a worker's HTTP API, the one named before the action:
`shop dead-letters --url URL {action} ID --reason TEXT`; $API_TOKEN is sent when
set.

Prints `ID: {state}` on stdout for each one, and the worker's answer on stderr
for each one not.
Exit status: 0 when every ID was {state}; 1 when any was not (not found, not
dead, no answer).
"""

CLOSINGS = {
    "resolve": (
        "resolved",
        "the cause was dealt with another way (fixed by hand, replayed by other means).",
    ),
    "discard": ("discarded", "the message is not to be processed, ever."),
}


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topic", metavar="TOPIC", help="only those from this source topic (its full name)"
    )
    parser.add_argument(
        "--agent", metavar="READER", help="only those this reader failed on (stock-service, ...)"
    )
    parser.add_argument(
        "--error-type",
        metavar="TYPE",
        help="only those whose error is of this type, exactly (ValidationError, ...)",
    )
    parser.add_argument(
        "--error",
        metavar="TEXT",
        help="only those whose error type or message contains this text, ignoring case",
    )
    parser.add_argument(
        "--failed-after",
        type=aware_time,
        metavar="TIME",
        help="only those dead-lettered at or after this ISO 8601 time (with its zone)",
    )
    parser.add_argument(
        "--failed-before",
        type=aware_time,
        metavar="TIME",
        help="only those dead-lettered before this ISO 8601 time (with its zone)",
    )


def add_dead_letters_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dead-letters",
        help="list dead letters, re-drive them (by id or filter), resolve or discard them "
        "(over HTTP)",
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
        help="list dead letters in id order, filtered by topic, reader, error, time or state",
        description=LIST_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_filters(listing)
    listing.add_argument(
        "--status",
        choices=STATUSES,
        help="dead: not yet dealt with; redriven: sent back to its topic; resolved: dealt "
        "with another way; discarded: never to be processed",
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
    matching = actions.add_parser(
        "retry-matching",
        help="re-drive every dead letter a filter matches, counted first (--dry-run: only count)",
        description=RETRY_MATCHING_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_filters(matching)
    matching.add_argument(
        "--dry-run",
        action="store_true",
        help="count and list what would be re-driven, and the --through that re-drives it",
    )
    matching.add_argument(
        "--through",
        type=offset_number,
        metavar="OFFSET",
        help="a dry run's bound: only letters dead-lettered below this offset of the "
        "dead-letter topic",
    )
    matching.add_argument(
        "--limit",
        type=positive_int,
        default=1000,
        metavar="N",
        help="letters each request re-drives (or a dry run lists), up to 10000; it asks "
        "again until every counted one is done (default: %(default)s)",
    )
    matching.set_defaults(run=run_retry_matching)
    for action, (state, meaning) in CLOSINGS.items():
        closing = actions.add_parser(
            action,
            help=f"mark dead letters {state}, with a reason: never re-driven",
            description=CLOSE_DESCRIPTION.format(state=state, action=action, meaning=meaning),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        closing.add_argument("ids", nargs="+", metavar="ID", help="a dead letter's id")
        closing.add_argument(
            "--reason", required=True, help="why, kept on the letter (1-300 characters)"
        )
        closing.set_defaults(run=run_close)
