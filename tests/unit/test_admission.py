"""Past capacity a command is refused at once, before it is sent (nothing applied)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.command_bus import CommandBus, CommandTimeout, Overloaded, Stopping
from app.main import app
from models.envelope import CommandEnvelope
from web.http import at_capacity


class Topic:
    """A command topic that records what was sent and never answers."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.headers: list[Any] = []

    async def send(self, key: Any, value: bytes, headers: Any = None) -> None:
        self.sent.append(value)
        self.headers.append(headers)

    def get_topic_name(self) -> str:
        return "accounts.commands"


def deposit(command_id: str) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=command_id,
        command_type="DepositMoney",
        aggregate_id="acc-1",
        payload={"amount": "1.00"},
        correlation_id=command_id,
    )


def test_a_command_past_the_in_flight_bound_is_refused_unsent_and_a_retry_joins() -> None:
    async def run() -> None:
        bus = CommandBus(max_in_flight=2)
        bus._ready.set()
        topic = Topic()
        waiting = [
            asyncio.create_task(bus.send(topic, deposit(f"c{n}"), wait=0.3))  # type: ignore[arg-type]
            for n in range(2)
        ]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded):
            await bus.send(topic, deposit("c2"), wait=0.3)  # type: ignore[arg-type]
        assert len(topic.sent) == 2  # the refused command never reached Kafka
        retry = asyncio.create_task(bus.send(topic, deposit("c0"), wait=0.1))  # type: ignore[arg-type]
        for task in [*waiting, retry]:
            with pytest.raises(CommandTimeout):
                await task
        # answered or timed out, the slots are free again
        later = asyncio.create_task(bus.send(topic, deposit("c3"), wait=0.05))  # type: ignore[arg-type]
        with pytest.raises(CommandTimeout):
            await later

    asyncio.run(run())


def test_a_stopping_worker_refuses_new_commands_and_waits_for_those_in_flight() -> None:
    async def run() -> None:
        bus = CommandBus(max_in_flight=10)
        try:
            bus._ready.set()
            bus._deciding_here = 1  # a command being decided here
            drained = asyncio.ensure_future(bus.drain())
            await asyncio.sleep(0.1)
            assert not drained.done()  # it waits for the answer in flight
            with pytest.raises(Stopping):
                bus.check_room()
            bus._deciding_here = 0
            await asyncio.wait_for(drained, 1.0)
        finally:
            app.drains.remove(bus.drain)

    asyncio.run(run())


def test_a_stopping_worker_answers_503_stopping_with_no_wait() -> None:
    error = at_capacity(Stopping("this worker is stopping"))
    assert (error.status, error.code, error.headers["Retry-After"]) == (503, "stopping", "0")
    assert at_capacity(Overloaded("64 in flight")).code == "overloaded"
