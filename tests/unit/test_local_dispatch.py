"""Where a saga command goes: decided in place when this worker decides its target's
partition (its answer taken in place too), else sent on the target's command topic.

No broker: the command sides are stand-ins that record what they were asked to decide,
and the topics stand-ins that record what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from agents import service as services
from agents.service import Service
from app.settings import settings
from domain.topology import SERVICES
from models.envelope import CommandEnvelope, CommandResult
from tests.unit.test_saga_policies import envelope

TRACE = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Side:
    """A command side that decides every command it owns by accepting it."""

    def __init__(self, owns: bool) -> None:
        self._owns = owns
        self.decided: list[CommandEnvelope] = []
        self.traces: list[bytes | None] = []

    def owns(self, aggregate_id: str) -> bool:
        return self._owns

    def submit(
        self, command: CommandEnvelope, trace: bytes | None
    ) -> asyncio.Future[CommandResult]:
        self.decided.append(command)
        self.traces.append(trace)
        answer: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        answer.set_result(
            CommandResult.answering(command, outcome="accepted", status=201, version=1)
        )
        return answer


class Topic:
    """A command topic: records what was sent; acknowledged at once unless `auto_ack` is
    off (then the test resolves `acks` when it likes)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.headers: list[Any] = []
        self.acks: list[asyncio.Future[None]] = []
        self.auto_ack = True

    async def send(self, key: str, value: bytes, headers: Any = None) -> asyncio.Future[None]:
        self.sent.append(value)
        self.headers.append(headers)
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.auto_ack:
            acked.set_result(None)
        self.acks.append(acked)
        return acked


@contextlib.contextmanager
def accounts_command_topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[Topic]:
    """A stand-in for the accounts' command topic; the services made meanwhile are
    forgotten after."""
    topic = Topic()
    monkeypatch.setitem(services.TOPICS, "accounts.commands", topic)
    saved = dict(services.HERE)
    try:
        yield topic
    finally:
        services.HERE.clear()
        services.HERE.update(saved)


@pytest.fixture
def accounts_topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[Topic]:
    with accounts_command_topic(monkeypatch) as topic:
        yield topic


def payment_requested() -> list[Any]:
    """The event whose outbound policy asks the accounts to withdraw the order's amount."""
    payload = {"customer_id": "cust-1", "amount": "12.50"}
    return [envelope("payment", "PaymentRequested", payload, aggregate_id="o1")]


def wire(accounts_owned: bool) -> tuple[Service, Side, Side]:
    payments_side, accounts_side = Side(owns=True), Side(owns=accounts_owned)
    payments = Service(SERVICES["payments"], payments_side)  # type: ignore[arg-type]
    Service(SERVICES["accounts"], accounts_side)  # type: ignore[arg-type]
    return payments, payments_side, accounts_side


async def test_a_command_for_a_partition_decided_here_is_decided_here_and_answered_here(
    accounts_topic: Topic,
) -> None:
    payments, payments_side, accounts_side = wire(accounts_owned=True)
    await payments._dispatch(payment_requested(), [], TRACE)
    assert [c.command_type for c in accounts_side.decided] == ["WithdrawMoney"]
    assert [c.command_type for c in payments_side.decided] == ["RecordCapture"]
    assert accounts_topic.sent == []  # no command record, no answer record
    # no record, but the trace goes on in memory: to the command and to its answer's
    assert accounts_side.traces == [TRACE] and payments_side.traces == [TRACE]


async def test_a_command_for_a_partition_decided_elsewhere_goes_on_its_topic(
    accounts_topic: Topic,
) -> None:
    payments, payments_side, accounts_side = wire(accounts_owned=False)
    await payments._dispatch(payment_requested(), [], TRACE)
    assert accounts_side.decided == [] and payments_side.decided == []
    assert accounts_topic.headers == [[("traceparent", TRACE)]]
    (sent,) = accounts_topic.sent
    command = CommandEnvelope.model_validate_json(sent)
    assert command.command_type == "WithdrawMoney"
    assert command.reply_to == settings.topic("payments.answers")


async def test_with_local_dispatch_off_every_command_goes_through_kafka(
    accounts_topic: Topic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        services, "settings", settings.model_copy(update={"saga_local_dispatch": False})
    )
    payments, payments_side, accounts_side = wire(accounts_owned=True)
    await payments._dispatch(payment_requested(), [], TRACE)
    assert accounts_side.decided == [] and payments_side.decided == []
    assert len(accounts_topic.sent) == 1
