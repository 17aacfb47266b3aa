"""The saga's batch on the engine: every command of a partition's batch is queued before any
answer is awaited (one decide per writer), and the batch's position is stored only once
every send it caused is acknowledged; a system error on the way stores nothing.

No broker: the command sides, the topic and the partition store are stand-ins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from agents.service import Service
from agents.services import Saga
from app.settings import settings
from domain.topology import SERVICES
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope
from tests.unit.records import Record
from tests.unit.test_local_dispatch import Topic, accounts_command_topic
from tests.unit.test_saga_policies import envelope


class Side:
    """A command side whose answers the test gives when it likes."""

    def __init__(self) -> None:
        self.queued: list[CommandEnvelope] = []
        self.traces: list[bytes | None] = []
        self.answers: list[asyncio.Future[CommandResult]] = []

    def owns(self, aggregate_id: str) -> bool:
        return False  # every dispatch goes through Kafka

    def submit(
        self, command: CommandEnvelope, trace: bytes | None
    ) -> asyncio.Future[CommandResult]:
        self.queued.append(command)
        self.traces.append(trace)
        answer: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self.answers.append(answer)
        return answer

    def accept_all(self) -> None:
        for command, answer in zip(self.queued, self.answers, strict=True):
            answer.set_result(
                CommandResult.answering(
                    command, outcome="accepted", version=1, events=[requested(command)]
                )
            )


def requested(command: CommandEnvelope) -> EventEnvelope:
    """The PaymentRequested event a RequestPayment command decides."""
    payload = {"customer_id": "cust-1", "amount": "12.50"}
    return envelope(
        "payment", "PaymentRequested", payload, command.aggregate_id, name=command.command_id
    )


class Store:
    def __init__(self) -> None:
        self.writes: list[dict[str, int]] = []

    def write(self, rows: Any, offsets: dict[str, int]) -> None:
        self.writes.append(dict(offsets))


@pytest.fixture
def accounts_topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[Topic]:
    with accounts_command_topic(monkeypatch) as topic:
        topic.auto_ack = False
        yield topic


def placed(n: int, trace: bytes | None = None) -> Record:
    order = f"o{n}"
    payload = {
        "customer_id": "cust-1",
        "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "12.50"}],
        "total": "12.50",
    }
    event = envelope("order", "OrderPlaced", payload, order, name=order)
    headers = () if trace is None else (("traceparent", trace),)
    return Record(n, event.model_dump_json().encode(), order.encode(), ORDERS_EVENTS, 0, 0, headers)


ORDERS_EVENTS = settings.topic("orders.events")
TRACES = [
    b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
]


def saga_of_payments() -> tuple[Saga, Side]:
    side = Side()
    payments = Service(SERVICES["payments"], side)  # type: ignore[arg-type]
    Service(SERVICES["accounts"], Side())  # type: ignore[arg-type]
    return Saga([payments]), side


async def test_a_batch_queues_every_command_then_stores_its_place_after_the_sends(
    accounts_topic: Topic,
) -> None:
    saga, side = saga_of_payments()
    store = Store()
    records = [placed(0, TRACES[0]), placed(1, TRACES[1])]
    batch = asyncio.ensure_future(saga.handle(0, store, records))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    # both commands are at the writer before either is answered: one decide
    assert [c.command_type for c in side.queued] == ["RequestPayment", "RequestPayment"]
    assert side.traces == TRACES  # each in the trace its record carried
    side.accept_all()
    await asyncio.sleep(0.01)
    assert len(accounts_topic.acks) == 2  # the withdrawals, handed to the producer
    assert accounts_topic.headers == [[("traceparent", trace)] for trace in TRACES]
    assert store.writes == []  # not acknowledged yet: nothing stored
    for ack in accounts_topic.acks:
        ack.set_result(None)
    await batch
    assert store.writes == [{ORDERS_EVENTS: 2}]


async def test_a_send_that_fails_stores_nothing(accounts_topic: Topic) -> None:
    saga, side = saga_of_payments()
    store = Store()
    batch = asyncio.ensure_future(saga.handle(0, store, [placed(0)]))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    side.accept_all()
    await asyncio.sleep(0.01)
    accounts_topic.acks[0].set_exception(KafkaConnectionError("broker gone"))
    with pytest.raises(KafkaConnectionError):
        await batch  # the engine goes back to the stored place and reads the batch again
    assert store.writes == []
