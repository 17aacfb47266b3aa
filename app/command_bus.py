"""Request/reply: a command goes to its aggregate's owner, the answer comes back.

Any worker can accept a command over HTTP. When this worker decides the
aggregate's partition itself, the command goes straight to that partition's
writer (no hop through Kafka but the append). Otherwise it sends the command
keyed by the aggregate id (so the partition's owner applies it, in order)
with `reply_to` naming this worker's own reply topic, and waits on a future
that the reply consumer resolves. faust's `agent.ask` does the same but makes a
new reply topic per process and only subscribes to it after a rebalance; a
fixed per-worker topic read by a plain consumer answers from the first request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TopicT

from app import tracing
from app.kafka_clients import client_options
from app.main import app
from app.provisioning import TopicSpec, ensure_topics
from app.settings import settings
from app.topics import reply_topic_name
from models.envelope import CommandEnvelope, CommandResult
from models.tracing import Trace, new_traceparent, trace_headers

log = logging.getLogger(__name__)

REPLY_RETENTION_MS = 3600 * 1000


class Overloaded(Exception):
    """Too many commands in flight on this worker: refused before sending (nothing applied)."""


class Stopping(Overloaded):
    """This worker is stopping: it takes no new command (another worker takes it)."""


class CommandTimeout(Exception):
    """No answer in time; the command may still be applied (retry with the same key)."""


class LocalDecider(Protocol):
    """A command side of this worker (agents/command_side.py)."""

    def owns(self, aggregate_id: str) -> bool: ...

    async def decide(self, command: CommandEnvelope, trace: Trace = None) -> CommandResult: ...


class CommandBus(faust.Service):
    """Sends commands and resolves the futures waiting for their results."""

    def __init__(self, max_in_flight: int = settings.command_max_in_flight, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_in_flight = max_in_flight
        self._pending: dict[str, asyncio.Future[CommandResult]] = {}
        self._deciding_here = 0
        self.local: dict[str, LocalDecider] = {}
        """Command topic name -> the command side deciding its partitions owned here."""
        self._consumer: AIOKafkaConsumer | None = None
        self._ready = asyncio.Event()
        self.reply_topic = ""
        self.stopping = False
        app.drains.append(self.drain)

    async def on_start(self) -> None:
        instance = settings.instance_id or f"{app.conf.web_host}-{app.conf.web_port}"
        self.reply_topic = reply_topic_name(instance.replace("/", "-"))
        await ensure_topics(
            {self.reply_topic: TopicSpec(1, {"retention.ms": str(REPLY_RETENTION_MS)})}
        )
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            group_id=None,
            **client_options(),
        )
        await consumer.start()
        partition = TopicPartition(self.reply_topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_end(partition)
        self._consumer = consumer
        self._ready.set()

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        for future in self._pending.values():
            future.cancel()

    @faust.Service.task
    async def _read_replies(self) -> None:
        await self._ready.wait()
        assert self._consumer is not None
        while not self.should_stop:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                for record in records:
                    self._resolve(record.value)

    def _resolve(self, raw: bytes | None) -> None:
        if raw is None:
            return
        try:
            result = CommandResult.model_validate_json(raw)
        except ValueError:
            log.warning("ignoring an undecodable reply on %s", self.reply_topic)
            return
        future = self._pending.pop(result.command_id, None)
        if future is not None and not future.done():
            future.set_result(result)

    def in_flight(self) -> int:
        """Commands this worker waits on now (sent to their owner, or deciding here)."""
        return len(self._pending) + self._deciding_here

    async def drain(self) -> None:
        """A graceful stop's first step: refuse new commands (`Stopping`: 503, their
        clients send them to another worker), then wait, up to COMMAND_TIMEOUT, for the
        answers of those in flight, while every part of the worker still runs. Stopping
        the parts first left each command that arrived meanwhile waiting out the
        timeout for an answer nobody would send (a rolling restart took 18 s a worker)."""
        self.stopping = True
        deadline = time.monotonic() + settings.command_timeout
        # polled: in_flight() sums what several paths add and take away
        while self.in_flight() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if self.in_flight():
            log.warning("stopping with %d commands still unanswered", self.in_flight())

    def check_room(self) -> None:
        """Overloaded when `max_in_flight` commands already wait, Stopping once the worker
        stops: checked before a request's body is even read, so refusing costs little."""
        if self.stopping:
            raise Stopping("this worker is stopping")
        if self.in_flight() >= self.max_in_flight:
            raise Overloaded(f"{self.in_flight()} commands in flight on this worker")

    async def send(
        self,
        topic: TopicT,
        command: CommandEnvelope,
        wait: float | None = None,
        trace: Trace = None,
    ) -> CommandResult:
        """Send a command and wait for the handler's recorded result.

        Raises Overloaded, without sending, when `max_in_flight` commands already
        wait: past capacity a client is told "no" at once, not "maybe" after the
        timeout for work that is then applied anyway. A retry of a command that is
        in flight joins it.

        The command and all it leads to carry `trace` (the client's traceparent), or
        a new trace when it brought none.
        """
        spans = tracing.SPANS
        if spans is None:
            return await self._send(topic, command, wait, trace or new_traceparent())
        span = spans.start(
            f"command {command.command_type}",
            trace,
            {"shop.command_id": command.command_id, "shop.correlation_id": command.correlation_id},
        )
        try:
            return await self._send(topic, command, wait, span.traceparent)
        finally:
            span.end()

    async def _send(
        self, topic: TopicT, command: CommandEnvelope, wait: float | None, trace: bytes
    ) -> CommandResult:
        in_flight = self.in_flight()
        local = self.local.get(topic.get_topic_name())
        if local is not None and local.owns(command.aggregate_id):
            if in_flight >= self.max_in_flight:
                raise Overloaded(f"{in_flight} commands in flight on this worker")
            try:
                return await self._decide_here(local, command, wait, trace)
            except ConnectionError:  # the partition moved meanwhile: to its new owner
                pass
        await self._ready.wait()
        command = command.model_copy(update={"reply_to": self.reply_topic})
        future = self._pending.get(command.command_id)
        if future is None and in_flight >= self.max_in_flight:
            raise Overloaded(f"{in_flight} commands in flight on this worker")
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[command.command_id] = future
        value = command.model_dump_json().encode()
        await topic.send(key=command.aggregate_id, value=value, headers=trace_headers(trace))
        try:
            return await asyncio.wait_for(asyncio.shield(future), wait or settings.command_timeout)
        except TimeoutError:
            self._pending.pop(command.command_id, None)
            raise _timed_out(command, "its owner") from None

    async def _decide_here(
        self, local: LocalDecider, command: CommandEnvelope, wait: float | None, trace: bytes
    ) -> CommandResult:
        self._deciding_here += 1
        try:
            answer = asyncio.ensure_future(local.decide(command, trace))
            return await asyncio.wait_for(asyncio.shield(answer), wait or settings.command_timeout)
        except TimeoutError:
            raise _timed_out(command, "this worker") from None
        finally:
            self._deciding_here -= 1


def _timed_out(command: CommandEnvelope, where: str) -> CommandTimeout:
    log.warning(
        "%s %s: no answer from %s in time",
        *(command.command_type, command.command_id, where),
        extra={"correlation_id": command.correlation_id, "command_id": command.command_id},
    )
    return CommandTimeout(command.command_id)


command_bus = CommandBus()
# faust starts extra services after table recovery; it accepts an instance too.
app.service(command_bus)  # type: ignore[arg-type]
