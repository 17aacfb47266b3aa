"""`fold_into`: the command side folds its own events into a faust table, once each.

A table here is a dict that records every write, as the changelog would.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import app  # noqa: F401 - the App first: tables are declared on it
from domain.accounts import ACCOUNTS
from models.envelope import CommandEnvelope, EventEnvelope
from tables.read_models import Gap, fold_into
from tests.unit.changelog import ChangelogDict

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def account_events() -> list[EventEnvelope]:
    state = ACCOUNTS.initial_state("acc-1")
    events: list[EventEnvelope] = []
    for n, (kind, payload) in enumerate(
        [("OpenAccount", {"owner": "Ann"}), ("DepositMoney", {"amount": "10.00"})]
    ):
        command = CommandEnvelope(
            command_id=f"c{n}",
            command_type=kind,
            aggregate_id="acc-1",
            payload=payload,
            correlation_id=f"c{n}",
        )
        result, state = ACCOUNTS.execute(command, state, NOW)
        events += result.events
    return events


def test_an_event_past_the_next_version_is_a_gap_and_writes_nothing() -> None:
    table = ChangelogDict()
    opened, deposited = account_events()
    with pytest.raises(Gap) as gap:
        fold_into(table, ACCOUNTS, deposited)
    assert (gap.value.aggregate_id, gap.value.have, gap.value.got) == ("acc-1", 0, 2)
    assert table.writes == []
    assert fold_into(table, ACCOUNTS, opened) and fold_into(table, ACCOUNTS, deposited)
