"""The command handler against in-memory tables: what a kill between two writes leaves.

A table here is a dict that logs its writes and the moments its writes are
confirmed (acknowledged by Kafka); the event topic records what is published.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import app  # noqa: F401 - the App first: the handler's tables are declared on it
from agents.commands import CommandHandler
from domain.accounts import ACCOUNTS
from models.envelope import CommandEnvelope, EventEnvelope

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Table(dict[str, Any]):
    def __init__(self, name: str, journal: list[str]) -> None:
        super().__init__()
        self.name = name
        self.journal = journal

    def __setitem__(self, key: str, value: Any) -> None:
        self.journal.append(f"write {self.name}")
        super().__setitem__(key, value)

    async def confirm_writes(self) -> None:
        self.journal.append(f"confirm {self.name}")

    def forget_writes(self) -> None:
        pass


class Topic:
    def __init__(self, journal: list[str]) -> None:
        self.journal = journal
        self.published: list[EventEnvelope] = []

    async def send(self, key: Any, value: bytes) -> None:
        self.journal.append("publish")
        self.published.append(EventEnvelope.model_validate_json(value))


def command(n: int, kind: str, payload: dict[str, Any]) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=f"c{n}",
        command_type=kind,
        aggregate_id="acc-1",
        payload=payload,
        correlation_id=f"c{n}",
    )


def handler() -> tuple[CommandHandler, list[str], Topic]:
    journal: list[str] = []
    topic = Topic(journal)
    made = CommandHandler(
        ACCOUNTS,
        Table("state", journal),
        Table("results", journal),
        events=topic,  # type: ignore[arg-type]
    )
    return made, journal, topic


def test_the_answer_is_durable_before_the_state_and_both_before_the_events() -> None:
    made, journal, _ = handler()
    asyncio.run(made.apply(command(1, "OpenAccount", {"owner": "Ann"})))
    assert journal == [
        "write results",
        "confirm results",
        "write state",
        "confirm state",
        "publish",
    ]


def test_a_restored_answer_whose_state_was_lost_rolls_the_state_forward() -> None:
    made, _, topic = handler()
    opened = command(1, "OpenAccount", {"owner": "Ann"})
    deposit = command(2, "DepositMoney", {"amount": "10.00"})
    asyncio.run(made.apply(opened))
    asyncio.run(made.apply(deposit))
    # a kill after the deposit's answer was acknowledged, before its state was:
    # the worker that restores the changelog has the answer and the state at v1
    at_v1 = ACCOUNTS.replay("acc-1", topic.published[:1])
    dict.__setitem__(made.state, "acc-1", at_v1.model_dump(mode="json"))

    again = asyncio.run(made.apply(deposit))  # redelivered

    assert again.version == 2
    assert made.state["acc-1"]["version"] == 2 and made.state["acc-1"]["balance"] == "10.00"
    assert [e.event_id for e in topic.published[-1:]] == [again.events[0].event_id]
    nxt = asyncio.run(made.apply(command(3, "DepositMoney", {"amount": "5.00"})))
    assert nxt.version == 3  # not a second version 2 on top of the deposit's effect
