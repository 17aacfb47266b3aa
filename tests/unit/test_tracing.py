"""The trace context: W3C traceparents read and written, the command bus starting a trace
or keeping the client's, event headers and the timeline carrying it, and OpenTelemetry
spans (on only when asked for, and then parented by the traceparents records carry)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app import tracing
from app.command_bus import CommandBus
from models.envelope import CommandEnvelope, CommandResult
from models.tracing import new_traceparent, parse_traceparent, trace_id_of, trace_of
from tables.command_log import headers_for
from tables.orders import Timeline, timeline
from tests.unit.records import Record, Rows
from tests.unit.test_saga_policies import envelope

GIVEN = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ROOT = Path(__file__).resolve().parents[2]


def deposit(command_id: str = "c1") -> CommandEnvelope:
    return CommandEnvelope(
        command_id=command_id,
        command_type="DepositMoney",
        aggregate_id="acc-1",
        payload={"amount": "1.00"},
        correlation_id=command_id,
    )


@pytest.mark.parametrize(
    "value",
    [
        GIVEN,
        GIVEN.upper(),
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later-fields",
    ],
)
def test_a_valid_traceparent_is_kept_as_version_00(value: str) -> None:
    assert parse_traceparent(value) == GIVEN.encode()


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # no trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # no parent
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # a version never valid
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # 00 has no more
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # a digit short
    ],
)
def test_an_invalid_traceparent_is_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_a_new_trace_is_a_valid_traceparent_of_its_own() -> None:
    first, second = new_traceparent(), new_traceparent()
    assert parse_traceparent(first.decode()) == first
    assert trace_id_of(first) != trace_id_of(second)


class Topic:
    def __init__(self) -> None:
        self.headers: list[Any] = []

    async def send(self, key: Any, value: bytes, headers: Any = None) -> None:
        self.headers.append(headers)

    def get_topic_name(self) -> str:
        return "accounts.commands"


class Here:
    """A command side of this worker that owns every aggregate."""

    def __init__(self) -> None:
        self.traces: list[bytes | None] = []

    def owns(self, aggregate_id: str) -> bool:
        return True

    async def decide(self, command: CommandEnvelope, trace: bytes | None = None) -> CommandResult:
        self.traces.append(trace)
        return CommandResult.answering(command, outcome="accepted", version=1)


def test_the_command_bus_keeps_a_clients_trace_and_starts_one_for_a_command_without() -> None:
    async def run() -> None:
        bus = CommandBus()
        bus._ready.set()
        topic = Topic()
        for trace in (GIVEN.encode(), None):  # sent to the owner elsewhere: in the headers
            with pytest.raises(Exception, match="c"):
                await bus.send(topic, deposit(), wait=0.01, trace=trace)  # type: ignore[arg-type]
        here = Here()
        bus.local["accounts.commands"] = here
        for trace in (GIVEN.encode(), None):  # decided here: in memory
            await bus.send(topic, deposit(), trace=trace)  # type: ignore[arg-type]
        [(name, given)], [(_, started)] = topic.headers
        assert name == "traceparent" and given == GIVEN.encode()
        assert parse_traceparent(started.decode()) == started != given
        assert here.traces[0] == GIVEN.encode()
        assert here.traces[1] is not None and trace_id_of(here.traces[1]) != trace_id_of(
            GIVEN.encode()
        )

    asyncio.run(run())


def test_an_events_record_carries_its_commands_trace_and_the_timeline_shows_it() -> None:
    headers = headers_for(deposit(), "print", GIVEN.encode())
    assert trace_of(headers) == GIVEN.encode()
    assert trace_of(headers_for(deposit(), "print")) is None
    payload = {
        "customer_id": "cust-1",
        "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "12.50"}],
        "total": "12.50",
    }
    placed = envelope("order", "OrderPlaced", payload, "o1", name="o1")
    record = Record(0, placed.model_dump_json().encode(), b"o1", headers=tuple(headers))
    rows = Rows()
    folded = Timeline().fold([record], rows)
    assert folded.failures == []
    rows.apply(folded)
    (step,) = timeline(rows, "o1")
    assert step["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.start("w-test", exporter)
    yield exporter
    tracing.stop()


def test_a_span_is_a_child_of_the_traceparent_its_record_carried(
    spans: InMemorySpanExporter,
) -> None:
    assert tracing.SPANS is not None
    step = tracing.SPANS.start("payments RequestPayment", GIVEN.encode(), {"shop.offset": 3})
    decide = tracing.SPANS.start("decide RequestPayment", step.traceparent)
    decide.end()
    step.end()
    finished = {span.name: span for span in spans.get_finished_spans()}
    parent, child = finished["payments RequestPayment"], finished["decide RequestPayment"]
    assert f"{parent.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert parent.parent is not None and f"{parent.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert child.parent is not None and child.parent.span_id == parent.context.span_id
    assert child.context.trace_id == parent.context.trace_id
    assert trace_id_of(step.traceparent) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert parent.attributes == {"shop.offset": 3}


def test_a_span_without_a_parent_starts_a_trace_and_links_others(
    spans: InMemorySpanExporter,
) -> None:
    assert tracing.SPANS is not None
    tracing.SPANS.start("saga batch", None, links=[GIVEN.encode()]).end()
    (batch,) = spans.get_finished_spans()
    assert batch.parent is None
    assert [f"{link.context.trace_id:032x}" for link in batch.links] == [GIVEN[3:35]]


def test_with_no_exporter_named_no_span_is_recorded_and_opentelemetry_is_not_imported() -> None:
    code = (
        "import sys, app.worker, app.tracing as t\n"
        "assert t.start('w') is None and t.SPANS is None\n"
        "print(sorted({m for m in sys.modules if m.startswith('opentelemetry')}))\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
