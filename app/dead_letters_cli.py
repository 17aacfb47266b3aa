"""`shop dead-letters list|retry`: the dead-letter endpoints from the command line.

    shop dead-letters list [--topic T] [--error TEXT] [--limit N] [--all] [--json]
    shop dead-letters retry ID [ID ...]

It talks to any worker over HTTP (`--url`, default $SHOP_URL or
http://127.0.0.1:6066) and sends $API_TOKEN when set, like any other client.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:6066"


def _client(args: argparse.Namespace) -> httpx.Client:
    headers = {}
    token = os.environ.get("API_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=args.url, headers=headers, timeout=30.0)


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body.get('error')}: {body.get('reason')}"
    except ValueError:
        return f"{response.status_code}: {response.text[:200]}"


def fetch_dead_letters(
    client: httpx.Client, topic: str | None, error: str | None, limit: int, every_page: bool
) -> list[dict[str, Any]]:
    """Dead letters in id order, one page or every page."""
    params: dict[str, Any] = {"limit": min(limit, 1000)}
    if topic:
        params["topic"] = topic
    if error:
        params["error"] = error
    letters: list[dict[str, Any]] = []
    while True:
        response = client.get("/ops/dead-letters", params=params)
        if response.status_code != 200:
            raise RuntimeError(_error(response))
        body = response.json()
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
    with _client(args) as client:
        try:
            letters = fetch_dead_letters(client, args.topic, args.error, args.limit, args.all)
        except (RuntimeError, httpx.HTTPError) as exc:
            print(f"shop dead-letters: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(letters, indent=2))
        return 0
    for letter in letters:
        print(summary_line(letter))
    print(f"{len(letters)} dead letter(s)", file=sys.stderr)
    return 0


def run_retry(args: argparse.Namespace) -> int:
    """Re-drive each id; exit 1 if any could not be (not found, already re-driven...)."""
    failed = 0
    with _client(args) as client:
        for letter_id in args.ids:
            try:
                response = client.post(f"/ops/dead-letters/{letter_id}/retry")
            except httpx.HTTPError as exc:
                print(f"{letter_id}: {exc}", file=sys.stderr)
                failed += 1
                continue
            if response.status_code == 200:
                print(f"{letter_id}: re-driven to {response.json()['source_topic']}")
            else:
                print(f"{letter_id}: {_error(response)}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def add_dead_letters_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("dead-letters", help="list or re-drive dead letters")
    parser.add_argument("--url", default=os.environ.get("SHOP_URL", DEFAULT_URL))
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="dead letters, oldest first")
    listing.add_argument("--topic", help="only those from this source topic")
    listing.add_argument("--error", help="only those whose error contains this text")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.add_argument("--all", action="store_true", help="every page, not just one")
    listing.add_argument("--json", action="store_true", help="full records as JSON")
    listing.set_defaults(run=run_list)
    retry = actions.add_parser("retry", help="send dead letters back to their source topic")
    retry.add_argument("ids", nargs="+", metavar="ID")
    retry.set_defaults(run=run_retry)
