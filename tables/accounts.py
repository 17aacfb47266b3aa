"""Account tables: the command side's aggregate state and the query side's read models.

All are keyed by account id (or prefixed by it), and written only while
processing a message keyed by that account, so each row lives in the same
partition as its aggregate's commands and events.
"""

from __future__ import annotations

import logging
from typing import Any

from app.main import app
from app.settings import settings
from domain.accounts import ACCOUNTS
from models.accounts import Account
from models.envelope import EventEnvelope
from tables.ranges import rows_with_prefix

log = logging.getLogger(__name__)


def _table(name: str, help: str) -> Any:
    # bytes keys: stored raw, so table_route hashes them as the producer does
    return app.Table(name, partitions=settings.partitions, key_type=bytes, help=help)


account_state = _table("account-state", "Command side: each account's current state.")
account_commands = _table(
    "account-commands", "Command side: each applied command's recorded result, for idempotency."
)
accounts = _table("accounts", "Read model: each account's owner, balance and version.")
account_history = _table(
    "account-history", "Read model: each account's events, keyed account_id/version."
)


def command_key(account_id: str, command_id: str) -> str:
    return f"{account_id}/{command_id}"


def history_key(account_id: str, version: int) -> str:
    # zero-padded so RocksDB's byte order is version order
    return f"{account_id}/{version:012d}"


def read_history(account_id: str) -> list[EventEnvelope]:
    """One account's events in version order, read in O(that stream)."""
    return [
        EventEnvelope.model_validate(row)
        for _, row in rows_with_prefix(account_history, f"{account_id}/")
    ]


def project(envelope: EventEnvelope) -> bool:
    """Fold one event into the read models; False if it was already folded.

    Versions are gap-free per account, so "version <= the model's version"
    identifies a redelivered or re-published event without a separate index.
    """
    current = accounts.get(envelope.aggregate_id)
    state = (
        Account.model_validate(current)
        if current is not None
        else ACCOUNTS.initial_state(envelope.aggregate_id)
    )
    if envelope.aggregate_version <= state.version:
        return False
    if envelope.aggregate_version != state.version + 1:
        log.error(
            "gap in account %s: model at version %d, event at %d",
            envelope.aggregate_id,
            state.version,
            envelope.aggregate_version,
        )
    state = ACCOUNTS.apply(state, envelope)
    accounts[envelope.aggregate_id] = state.model_dump(mode="json")
    account_history[history_key(envelope.aggregate_id, envelope.aggregate_version)] = (
        envelope.model_dump(mode="json")
    )
    return True
