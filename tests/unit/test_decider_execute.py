"""Executing a command, the whole command side as one pure function (no Kafka).

`execute` validates, checks the expected version, decides, and stamps each event
with a deterministic id and the next version: a command run twice (after a
crash) produces the very same events, and a refused command changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.accounts import ACCOUNTS
from models.accounts import Account
from models.envelope import CommandEnvelope, CommandResult, event_id_for

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def command(
    command_type: str,
    payload: dict[str, Any],
    command_id: str = "cmd-1",
    account_id: str = "acc-1",
    expected_version: int | None = None,
    causation_id: str | None = None,
) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=command_id,
        command_type=command_type,
        aggregate_id=account_id,
        expected_version=expected_version,
        payload=payload,
        correlation_id=f"flow-{command_id}",
        causation_id=causation_id,
    )


def open_(command_id: str = "open", **extra: Any) -> CommandEnvelope:
    return command("OpenAccount", {"owner": "Ann"}, command_id, **extra)


def deposit(amount: str, command_id: str = "dep", **extra: Any) -> CommandEnvelope:
    return command("DepositMoney", {"amount": amount}, command_id, **extra)


def withdraw(amount: str, command_id: str = "wd", **extra: Any) -> CommandEnvelope:
    return command("WithdrawMoney", {"amount": amount}, command_id, **extra)


def run(
    *commands: CommandEnvelope, state: Account | None = None
) -> tuple[list[CommandResult], Account]:
    state = state or ACCOUNTS.initial_state("acc-1")
    results = []
    for cmd in commands:
        result, state = ACCOUNTS.execute(cmd, state, NOW)
        results.append(result)
    return results, state


def funded(balance: str = "100.00") -> Account:
    """An account at version 2 holding `balance`."""
    results, state = run(open_(), deposit(balance, "fund"))
    assert [r.outcome for r in results] == ["accepted", "accepted"]
    return state


# --- an accepted command -------------------------------------------------------------


def test_an_accepted_command_answers_with_its_events_and_the_new_version() -> None:
    (result,), state = run(open_("open-1"))
    assert result.outcome == "accepted"
    assert result.rejection is None
    assert result.version == state.version == 1
    (event,) = result.events
    assert event.event_type == "AccountOpened" and event.schema_version == 1
    assert event.aggregate_type == "account" and event.aggregate_id == "acc-1"
    assert event.aggregate_version == 1
    assert event.occurred_at == NOW
    assert event.payload == {"owner": "Ann"}
    # the flow: correlated with the client's flow, caused by the command itself
    assert event.correlation_id == "flow-open-1"
    assert event.causation_id == "open-1"
    assert (result.command_id, result.command_type, result.aggregate_id) == (
        "open-1",
        "OpenAccount",
        "acc-1",
    )


def test_a_command_caused_by_an_event_names_that_event_as_its_cause() -> None:
    cause = str(uuid.uuid4())
    (result,), _ = run(deposit("5.00", "saga-step", causation_id=cause), state=funded())
    assert result.events[0].causation_id == cause


def test_versions_continue_from_the_state() -> None:
    state = funded()
    assert state.version == 2
    results, state = run(deposit("1.00", "a"), withdraw("2.00", "b"), state=state)
    assert [e.aggregate_version for r in results for e in r.events] == [3, 4]
    assert [r.version for r in results] == [3, 4]
    assert state.version == 4


def test_event_ids_are_deterministic_for_the_same_command_id() -> None:
    """A command re-run after a crash yields the same event, so consumers can dedupe."""
    state = funded()
    first, _ = ACCOUNTS.execute(deposit("7.00", "same"), state, NOW)
    later, _ = ACCOUNTS.execute(deposit("7.00", "same"), state, NOW + timedelta(seconds=9))
    assert [e.event_id for e in first.events] == [e.event_id for e in later.events]
    assert first.events[0].event_id == event_id_for("account", "same", 0)
    assert first.events[0].aggregate_version == later.events[0].aggregate_version == 3

    other, _ = ACCOUNTS.execute(deposit("7.00", "different"), state, NOW)
    assert other.events[0].event_id != first.events[0].event_id


def test_event_ids_differ_per_index_and_per_aggregate_type() -> None:
    ids = {event_id_for("account", "c", 0), event_id_for("account", "c", 1)}
    ids.add(event_id_for("stock", "c", 0))
    assert len(ids) == 3


def test_execute_does_not_change_the_state_it_was_given() -> None:
    state = funded("10.00")
    _, after = ACCOUNTS.execute(deposit("5.00"), state, NOW)
    assert (state.balance, state.version) == (10, 2)
    assert (after.balance, after.version) == (15, 3)


# --- optimistic concurrency ------------------------------------------------------------


def test_a_command_that_expects_another_version_is_rejected_with_both_versions() -> None:
    state = funded()
    (result,), after = run(deposit("1.00", expected_version=1), state=state)
    assert result.outcome == "rejected"
    assert result.rejection is not None and result.rejection.code == "version_conflict"
    assert result.rejection.code == "version_conflict"
    assert result.rejection.details == {"expected_version": 1, "actual_version": 2}
    assert result.version == 2 and result.events == []
    assert after == state


def test_a_command_that_expects_the_current_version_is_applied() -> None:
    (result,), state = run(deposit("1.00", expected_version=2), state=funded())
    assert result.outcome == "accepted" and result.version == state.version == 3


def test_expecting_version_zero_means_it_must_not_exist_yet() -> None:
    (result,), _ = run(open_(expected_version=0))
    assert result.outcome == "accepted"
    (again,), _ = run(open_("open-2", expected_version=0), state=funded())
    assert again.rejection is not None
    assert again.rejection.code == "version_conflict"


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"amount": 1.5}, "amount"),
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({}, "amount"),
        ({"amount": "1.00", "colour": "red"}, "colour"),
    ],
)
def test_an_invalid_payload_is_rejected_as_unprocessable(
    payload: dict[str, Any], field: str
) -> None:
    state = funded()
    (result,), after = run(command("DepositMoney", payload), state=state)
    assert result.outcome == "rejected"
    assert result.rejection is not None and result.rejection.code == "invalid_command"
    assert [e["loc"] for e in result.rejection.details["errors"]] == [[field]]
    assert after == state and result.version == 2
    # the rejection is recorded (table) and sent (reply topic) as JSON: it must encode
    assert CommandResult.model_validate_json(result.model_dump_json()) == result


def test_an_unknown_command_type_is_rejected_as_unprocessable() -> None:
    (result,), after = run(command("CloseAccount", {}), state=funded())
    assert result.rejection is not None
    assert result.rejection.code == "invalid_command"
    assert "CloseAccount" in result.rejection.reason
    assert after == funded()


@pytest.mark.parametrize(
    ("cmd", "code"),
    [
        (open_("again"), "already_exists"),
        (withdraw("100.01"), "insufficient_funds"),
        (deposit("1.00", expected_version=5), "version_conflict"),
        (command("DepositMoney", {"amount": "0"}), "invalid_command"),
    ],
)
def test_a_rejected_command_leaves_the_state_unchanged_and_emits_nothing(
    cmd: CommandEnvelope, code: str
) -> None:
    state = funded("100.00")
    (result,), after = run(cmd, state=state)
    assert result.rejection is not None
    assert (result.outcome, result.rejection.code) == ("rejected", code)
    assert result.events == []
    assert result.version == 2
    assert after == state


def test_a_rejection_is_a_recordable_answer() -> None:
    """The handler stores the result as JSON and answers a repeat with it verbatim."""
    (result,), _ = run(withdraw("500.00"), state=funded("100.00"))
    stored = result.model_dump(mode="json")
    assert stored["rejection"]["details"] == {"balance": "100.00", "amount": "500.00"}
    assert CommandResult.model_validate(stored) == result


def test_a_missing_account_refuses_money_with_not_found() -> None:
    (result,), after = run(deposit("1.00"))
    assert result.rejection is not None
    assert (result.rejection.code, result.version) == ("not_found", 0)
    assert not after.exists
