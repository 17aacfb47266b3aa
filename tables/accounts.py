"""Account tables: the command side's aggregate state and the query side's read models.

The command side's tables are faust tables keyed by account id. The read models
(each account's state, and its events by version) are a batched fold of
`accounts.events` into a partition store (agents/folds.py): rows are keyed so
that one account's history is one contiguous range, and history rows are the
event's own bytes, so the event topic is their changelog.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from domain.accounts import ACCOUNTS
from models.accounts import Account
from models.envelope import EventEnvelope
from models.upcasting import decode_event
from tables.aggregates import aggregate_tables
from tables.partition_store import PartitionStore
from tables.read_models import Folded, GapInLog, Record, Stored

account_side = aggregate_tables("account")

STATE = b"a/"
"""account id -> the account's state (JSON)."""
HISTORY = b"h/"
"""account id / zero-padded version -> the event, as the log holds it."""


def state_key(account_id: str) -> bytes:
    return STATE + account_id.encode()


def history_key(account_id: str, version: int) -> bytes:
    # zero-padded so RocksDB's byte order is version order
    return HISTORY + f"{account_id}/{version:012d}".encode()


class AccountsFold:
    """accounts.events -> each account's state and its events by version."""

    name = "accounts-projection"
    events = "accounts.events"

    def fold(self, records: Sequence[Record], stored: Stored) -> Folded:
        """Fold in order; each touched account's state is written once per batch.

        An event at or below the account's version is a repeat (a retried append)
        and changes nothing; one past the next version is a gap in the log itself
        (every earlier offset of the partition was folded): it is not folded, and
        its record is returned as a failure for the dead-letter topic."""
        states: dict[str, Account] = {}
        folded = Folded()
        for record in records:
            try:
                envelope = decode_event(record.value or b"")
                account_id = envelope.aggregate_id
                state = states.get(account_id)
                if state is None:
                    state = _stored_state(stored, account_id)
                version = envelope.aggregate_version
                if version <= state.version:
                    continue
                if version != state.version + 1:
                    raise GapInLog(
                        f"gap in {account_id}: read model at version {state.version}, event at "
                        f"{version}; the log of {record.topic}[{record.partition}] lacks versions "
                        f"{list(range(state.version + 1, version))[:20]}"
                    )
                states[account_id] = ACCOUNTS.apply(state, envelope)
                folded.rows[history_key(account_id, version)] = record.value
            except Exception as error:  # a pure fold: no retry would change the outcome
                folded.failures.append((record, error))
        for account_id, state in states.items():
            folded.rows[state_key(account_id)] = state.model_dump_json().encode()
        return folded


def _stored_state(stored: Stored, account_id: str) -> Account:
    raw = stored(state_key(account_id))
    return ACCOUNTS.initial_state(account_id) if raw is None else Account.model_validate_json(raw)


def account_row(store: PartitionStore, account_id: str) -> dict[str, Any] | None:
    """The account's read model row (a JSON dict), None if it does not exist."""
    raw = store.get(state_key(account_id))
    return None if raw is None else dict(json.loads(raw))


def read_history(store: PartitionStore, account_id: str) -> list[EventEnvelope]:
    """One account's events in version order (upcast to today's shapes), O(that stream)."""
    prefix = HISTORY + f"{account_id}/".encode()
    return [decode_event(raw) for _, raw in store.with_prefix(prefix)]
