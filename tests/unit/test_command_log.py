"""The command side's decisions, pure: a batch against the fold of its own event log.

No broker: the log is a list of records with the headers the writer sets, the
store is a dict, and the fold is the one the worker runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.accounts import ACCOUNTS
from domain.decider import Decider
from domain.inventory import RESERVATIONS
from models.envelope import CommandEnvelope, CommandResult
from tables.command_log import (
    CommandLogFold,
    Decided,
    appended_rows,
    decide_batch,
    headers_for,
    load_state,
    recorded,
)
from tests.unit.records import Rows

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Headed:
    """An event record as the writer appends it (its headers name the command)."""

    def __init__(self, offset: int, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.topic = "accounts.events"
        self.partition = 0
        self.offset = offset
        self.key: bytes | None = None
        self.value: bytes | None = value
        self.raw = value
        self.timestamp = 0
        self.headers = headers


class Log:
    """One partition of the event topic and the command side's fold of it."""

    def __init__(self, decider: Decider[Any, Any, Any] = ACCOUNTS) -> None:
        self.decider = decider
        self.records: list[Headed] = []
        self.rows = Rows()
        self.fold = CommandLogFold("commands", "events", decider)

    def decide(self, *commands: CommandEnvelope, **kwargs: Any) -> Decided:
        """Decide a batch, append what it accepted, fold it: one writer's round. The
        writer writes `appended_rows` instead of folding its own appends: they must be
        the rows the fold writes."""
        decided = decide_batch(self.decider, commands, self.rows, NOW, **kwargs)
        written = Rows(self.rows)
        values = [[e.model_dump_json().encode() for e in a.result.events] for a in decided.appends]
        written.update(appended_rows(decided, values))
        for append, raws in zip(decided.appends, values, strict=True):
            for raw in raws:
                self.append(raw, headers_for(append.command, append.fingerprint))
        assert written == self.rows
        return decided

    def append(self, raw: bytes, headers: list[tuple[str, bytes]]) -> None:
        record = Headed(len(self.records), raw, headers)
        self.records.append(record)
        self.rows.apply(self.fold.fold([record], self.rows))


def command(n: int, kind: str, payload: dict[str, Any], account: str = "acc-1") -> CommandEnvelope:
    return CommandEnvelope(
        command_id=f"c{n}",
        command_type=kind,
        aggregate_id=account,
        payload=payload,
        correlation_id=f"c{n}",
    )


OPEN = command(1, "OpenAccount", {"owner": "Ann"})


def deposit(n: int, amount: str, account: str = "acc-1") -> CommandEnvelope:
    return command(n, "DepositMoney", {"amount": amount}, account)


def balance(log: Log, account: str = "acc-1") -> str:
    return str(load_state(ACCOUNTS, log.rows, account).balance)  # type: ignore[attr-defined]


def test_a_batch_is_decided_in_order_each_command_on_the_state_the_earlier_ones_left() -> None:
    log = Log()
    decided = log.decide(OPEN, deposit(2, "10.00"), deposit(3, "5.00"))
    assert [a.version for a in decided.answers] == [1, 2, 3]
    assert [a.outcome for a in decided.answers] == ["accepted"] * 3
    assert [r.value and len(r.headers) for r in log.records] == [2, 2, 2]
    assert balance(log) == "15.00"


def test_a_redelivered_command_is_answered_from_the_log_and_appends_nothing() -> None:
    log = Log()
    first = log.decide(OPEN, deposit(2, "10.00")).answers[1]
    again = log.decide(deposit(2, "10.00")).answers[0]
    assert again == first
    assert len(log.records) == 2 and balance(log) == "10.00"


def test_the_answer_comes_from_the_log_alone_on_a_worker_that_never_saw_the_command() -> None:
    log = Log()
    first = log.decide(OPEN, deposit(2, "10.00")).answers[1]
    elsewhere = Log()  # an empty disk: the fold of the same records
    for record in log.records:
        elsewhere.append(record.raw, record.headers)
    again = elsewhere.decide(deposit(2, "10.00")).answers[0]
    assert again == first and len(elsewhere.records) == 2


def test_a_command_repeated_within_one_batch_is_decided_once() -> None:
    log = Log()
    decided = log.decide(OPEN, deposit(2, "10.00"), deposit(2, "10.00"))
    assert decided.answers[1] == decided.answers[2]
    assert len(decided.appends) == 2 and balance(log) == "10.00"


def test_the_same_key_for_another_request_is_refused_and_changes_nothing() -> None:
    log = Log()
    log.decide(OPEN, deposit(2, "10.00"))
    reused = log.decide(deposit(2, "99.00")).answers[0]
    assert reused.rejection is not None and reused.rejection.code == "idempotency_key_reused"
    assert reused.rejection.code == "idempotency_key_reused"
    assert reused.version == 2 and balance(log) == "10.00"
    within = log.decide(deposit(3, "1.00"), deposit(3, "2.00")).answers
    assert [a.outcome for a in within] == ["accepted", "rejected"] and balance(log) == "11.00"


def test_a_rejection_appends_nothing_and_is_decided_again_unless_remembered() -> None:
    log = Log()
    log.decide(OPEN)
    withdraw = command(2, "WithdrawMoney", {"amount": "5.00"})
    refused = log.decide(withdraw)
    assert refused.answers[0].outcome == "rejected" and not refused.appends
    assert len(log.records) == 1
    log.decide(deposit(3, "10.00"))
    remembered = log.decide(withdraw, rejected=refused.rejections).answers[0]
    assert remembered == refused.answers[0]
    decided_again = log.decide(withdraw).answers[0]  # forgotten (a restart): decided anew
    assert decided_again.outcome == "accepted" and balance(log) == "5.00"


def test_an_event_without_command_headers_is_folded_but_answers_no_command() -> None:
    log = Log()
    opened = log.decide(OPEN).answers[0]
    foreign = opened.events[0].model_copy(
        update={"aggregate_id": "acc-2", "event_id": opened.events[0].event_id}
    )
    log.append(foreign.model_dump_json().encode(), [])
    assert load_state(ACCOUNTS, log.rows, "acc-2").version == 1  # type: ignore[attr-defined]
    assert recorded(log.rows, "acc-2", "c1") is None


def test_of_two_writers_the_first_record_of_a_version_wins_and_the_loser_decides_again() -> None:
    log = Log()
    log.decide(OPEN)
    stale = Rows(log.rows)  # a writer that has not seen what comes next
    log.decide(deposit(2, "10.00"))  # the other writer appends version 2
    lost = decide_batch(ACCOUNTS, [deposit(3, "5.00")], stale, NOW)
    for append in lost.appends:  # lands after it, also as version 2
        for event in append.result.events:
            log.append(
                event.model_dump_json().encode(), headers_for(append.command, append.fingerprint)
            )
    assert recorded(log.rows, "acc-1", "c3") is None  # the fold kept the first version 2
    assert balance(log) == "10.00"
    again: CommandResult = log.decide(deposit(3, "5.00")).answers[0]  # on the log's state
    assert again.version == 3 and balance(log) == "15.00"


def reserve(n: int, kind: str, payload: dict[str, Any]) -> CommandEnvelope:
    return command(n, kind, payload, "order-1")


def test_a_command_of_several_events_is_recorded_whole_from_the_decision() -> None:
    log = Log(RESERVATIONS)
    log.decide(
        reserve(1, "NoteOrder", {"lines": {"A": 2, "B": 1}}),
        reserve(2, "StartReservation", {}),
        reserve(3, "RecordLine", {"sku": "A", "accepted": True}),
    )
    last = log.decide(reserve(4, "RecordLine", {"sku": "B", "accepted": True}))
    assert [e.event_type for e in last.answers[0].events] == ["LineReserved", "InventoryReserved"]
    known = recorded(log.rows, "order-1", "c4")
    assert known is not None and len(known.events) == 2


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=2).map(
    lambda d: format(d.normalize(), "f")  # "10", "10.5", "0.01": exponents of every kind
)
steps = st.lists(
    st.tuples(st.sampled_from(["DepositMoney", "WithdrawMoney"]), amounts, st.integers(0, 2)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(steps=steps, batch=st.integers(1, 7))
def test_the_rows_of_a_decision_are_the_rows_of_folding_its_events(
    steps: list[tuple[str, str, int]], batch: int
) -> None:
    log = Log()
    log.decide(*(command(90 + a, "OpenAccount", {"owner": "Ann"}, f"acc-{a}") for a in range(3)))
    commands = [
        command(n, kind, {"amount": amount}, f"acc-{account}")
        for n, (kind, amount, account) in enumerate(steps)
    ]
    for start in range(0, len(commands), batch):  # Log.decide compares the two
        log.decide(*commands[start : start + batch])
