"""The saga on this worker: every service's command side, and one reader of all their inputs.

domain/topology.py says what each service decides and reads; this module turns
each entry into a CommandSide (agents/command_side.py: its writers decide the
partitions this worker owns) and a Service (agents/service.py: what its inputs
mean), and runs every service of a partition as one reader on the engine, as
Kafka Streams runs every processor of a partition in one task. One batch of
partition p:

1. each record becomes a command for each service that reads its topic (a record
   that cannot be read is dead-lettered, and the batch goes on);
2. every command is queued at its service's command side at once, so each writer
   decides its share in one batch and appends it in one go; the batch waits for
   all the answers;
3. every answer's follow-ups (replies, commands for other services: decided here
   when this worker decides their partition) are sent together, and awaited
   together;
4. then the batch's position is stored (one per input topic).

A crash anywhere before 4 reads the batch again with the same command ids: each
is answered from the log, and the sends are repeated, which receivers apply once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.command_side import CommandSide, Tails
from agents.engine import Reader
from agents.service import Sends, Service, raise_first
from app import faults, tracing
from app.main import app
from app.settings import settings
from app.topics import TOPICS
from domain.topology import TOPOLOGY, ServiceSpec
from models.envelope import CommandEnvelope
from models.tracing import Trace, trace_of
from tables.partition_store import PartitionStore

SIDE_OF: dict[str, CommandSide] = {}
"""The command side of each service, by service name."""

Taken = tuple[Service, Any, CommandEnvelope, Trace]
"""A service, the record it read, the command it means, and the trace it carries on."""


class Saga(Reader):
    """Every service of the topology, one batch per partition of all their inputs."""

    kind = "services"

    def __init__(self, services: list[Service], **kwargs: Any) -> None:
        topics = list(dict.fromkeys(t for s in services for t in s.spec.inputs))
        super().__init__(
            "saga",
            tuple(topics),
            resumes_from_progress=True,
            max_batch=settings.command_max_batch,
            fetch_wait_ms=settings.service_fetch_wait_ms,
            **kwargs,
        )
        self.services = services
        self._readers_of = {
            topic: [s for s in services if topic in s.inputs] for topic in self.topics
        }

    async def handle(self, partition: int, store: PartitionStore, records: list[Any]) -> None:
        taken: list[Taken] = []
        for record in records:
            trace = trace_of(record.headers)
            for service in self._readers_of[record.topic]:
                command = await service.command(record, self.hold)
                if command is not None:
                    taken.append((service, record, command, trace))
        spans = tracing.SPANS
        steps = None if spans is None else _step_spans(spans, taken)
        if steps is not None:
            taken = [(*t[:3], step.traceparent) for t, step in zip(taken, steps, strict=True)]
        answers = [service.side.submit(command, trace) for service, _, command, trace in taken]
        results = await asyncio.gather(*answers, return_exceptions=True)
        raise_first(results)
        await faults.reached("service-answered")
        sends: Sends = []
        finished = await asyncio.gather(
            *(
                service.finish(record, command, result, sends, self.hold, trace)
                for (service, record, command, trace), result in zip(taken, results, strict=True)
            ),
            return_exceptions=True,
        )
        raise_first(finished)
        if sends:
            await faults.reached("service-unacked")
            await asyncio.gather(*sends)
            await faults.reached("service-sent")
        store.write({}, {r.topic: r.offset + 1 for r in records})
        if steps is not None:
            for step in steps:
                step.end()
        await faults.reached("service-stored")


def _step_spans(spans: tracing.Spans, taken: list[Taken]) -> list[tracing.Span]:
    """A saga step's span for each command of the batch, in the trace its record carried
    (a record without one starts a trace of its own)."""
    return [
        spans.start(
            f"{service.name} {command.command_type}",
            trace,
            {
                "shop.topic": record.topic,
                "shop.partition": record.partition,
                "shop.offset": record.offset,
                "shop.command_id": command.command_id,
                "shop.correlation_id": command.correlation_id,
            },
            consumer=True,
        )
        for service, record, command, trace in taken
    ]


def _wire(spec: ServiceSpec) -> Service:
    commands = TOPICS[spec.commands] if spec.commands else None
    side = CommandSide(spec.decider, commands=commands, events=TOPICS[spec.events])
    app.service(side)  # type: ignore[arg-type]
    SIDE_OF[spec.name] = side
    return Service(spec, side)


saga = Saga([_wire(spec) for spec in TOPOLOGY])
app.service(saga)  # type: ignore[arg-type]
app.service(Tails(list(SIDE_OF.values())))  # type: ignore[arg-type]
