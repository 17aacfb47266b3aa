"""Account tables: the command side's aggregate state and the query side's read models.

All are keyed by account id (or prefixed by it), and written only while
processing a message keyed by that account, so each row lives in the same
partition as its aggregate's commands and events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.accounts import ACCOUNTS
from models.envelope import EventEnvelope
from tables.aggregates import aggregate_tables, table
from tables.ranges import rows_with_prefix
from tables.read_models import fold_into

account_side = aggregate_tables("account")
accounts = table("accounts", "Read model: each account's owner, balance and version.")
account_history = table(
    "account-history", "Read model: each account's events, keyed account_id/version."
)


def history_key(account_id: str, version: int) -> str:
    # zero-padded so RocksDB's byte order is version order
    return f"{account_id}/{version:012d}"


def read_history(account_id: str) -> list[EventEnvelope]:
    """One account's events in version order, read in O(that stream)."""
    return [
        EventEnvelope.model_validate(row)
        for _, row in rows_with_prefix(account_history, f"{account_id}/")
    ]


READ_MODEL = {"accounts": accounts, "account-history": account_history}
"""The account read models by table name; a rebuild folds into dicts with these names."""


def project(envelope: EventEnvelope, views: Mapping[str, Any] = READ_MODEL) -> bool:
    """Fold one event into the account read models; False if it was already folded.

    A repeated event writes its history row again (see fold_into's rewrite_repeat).
    """
    folded = fold_into(views["accounts"], ACCOUNTS, envelope, rewrite_repeat=True) is not None
    history = views["account-history"]
    history[history_key(envelope.aggregate_id, envelope.aggregate_version)] = envelope.model_dump(
        mode="json"
    )
    return folded
