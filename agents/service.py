"""A service of the saga: one aggregate type, the facts it reacts to, the commands it sends.

Its inputs are its own command topic, the event topics it reacts to and the
answers to its commands; the saga's reader on the engine (agents/services.py)
reads every service's inputs of a partition as one batch. For each record a
service says what command it means (`command`: a client's or another service's
command as it is, a fact by its inbound policy, an answer by its answer policy);
the batch's commands are decided at the services' command sides together; then
each answered command's follow-ups are sent (`finish`):

1. the answer goes to the reply topic it names, if any;
2. its events are turned into commands for other services (outbound policy): a
   command for a partition this worker decides is decided here, and its answer
   taken here too (no command or answer record, no hop); any other is sent on
   its target's command topic, keyed by its aggregate.

Sends are collected, not awaited one by one: the batch awaits them together and
only then stores its position. A crash before that reads the batch again: its
commands have the same ids, so they are answered from the log (appending
nothing), and the sends are repeated, which every receiver applies once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from faust.types import TopicT

from agents.command_side import CommandSide
from agents.dead_letters import SYSTEM, GaveUp, attempted, bury
from app import faults
from app.main import app
from app.settings import settings
from app.topics import TOPICS
from domain.saga import Dispatch, fact_of
from domain.topology import Answer, Inbound, ServiceSpec, answer_topic, command_topic, no_dispatch
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope
from models.tracing import Trace, trace_headers
from models.upcasting import decode_event

log = logging.getLogger(__name__)

Hold = Callable[[], Awaitable[bool]]
"""Waits before a dead letter's send is tried again; False when the partition moved."""
Sends = list[Awaitable[Any]]
"""A batch's records handed to the producer, awaited together before its position is stored."""

HERE: dict[str, Service] = {}
"""This worker's services by name: a command for one of them may be decided here."""


class Service:
    """One service of the topology (domain/topology.py) on this worker: what its inputs
    mean as commands, and what their answers call for."""

    def __init__(self, spec: ServiceSpec, side: CommandSide) -> None:
        self.spec = spec
        self.side = side
        self.name = f"{spec.name}-service"
        """Names it in dead letters and fault hooks (SHOP_FAIL_FIRST)."""
        self._commands = {settings.topic(spec.commands)} if spec.commands else set()
        self._reacts_to: dict[str, Inbound] = {
            settings.topic(topic): policy for topic, policy in spec.reacts_to.items()
        }
        self._answers: tuple[str, Answer] | None = None
        if spec.answers is not None:
            self._answers = (settings.topic(spec.answers[0]), spec.answers[1])
        self.inputs = tuple(settings.topic(topic) for topic in spec.inputs)
        self._reply_topics: dict[str, TopicT] = {}
        HERE[spec.name] = self

    async def command(self, record: Any, hold: Hold) -> CommandEnvelope | None:
        """The command a record means; None if the policy ignores it, or the record was
        dead-lettered (it could not be read)."""
        ok, command = await attempted(self.name, record, partial(self._command, record), hold)
        return command if ok else None

    def _command(self, record: Any) -> CommandEnvelope | None:
        """The command a record means (None: the policy ignores it)."""
        topic, raw = record.topic, record.value
        if topic in self._commands:
            return CommandEnvelope.model_validate_json(raw or b"")
        if self._answers is not None and topic == self._answers[0]:
            return self._answers[1](CommandResult.model_validate_json(raw or b""))
        return self._reacts_to[topic](fact_of(decode_event(raw or b"")))

    async def finish(
        self,
        record: Any,
        command: CommandEnvelope,
        result: Any,
        sends: Sends,
        hold: Hold,
        trace: Trace = None,
    ) -> None:
        """Reply and dispatch what an answered command calls for, in its trace; a policy
        that fails on the answer (a bug) dead-letters the record that led to it."""
        assert isinstance(result, CommandResult)
        try:
            if command.reply_to:
                reply = await self._reply(command.reply_to, command.correlation_id, result, trace)
                sends.append(reply)
            if result.events and self.spec.outbound is not no_dispatch:
                await self._dispatch(result.events, sends, trace)
        except SYSTEM:
            raise
        except Exception as error:
            if not await bury(self.name, record, error, 1, hold):
                raise GaveUp(f"{self.name}: {record.topic}[{record.partition}] moved") from error

    async def _reply(
        self, reply_to: str, key: str, result: CommandResult, trace: Trace
    ) -> Awaitable[Any]:
        """Keyed by the correlation id: a saga's answers land in its order's partition."""
        await faults.reached("reply")
        topic = self._reply_topics.get(reply_to)
        if topic is None:
            topic = self._reply_topics[reply_to] = app.topic(
                reply_to, key_serializer="raw", value_serializer="raw"
            )
        value = result.model_dump_json().encode()
        return await topic.send(key=key, value=value, headers=trace_headers(trace))

    async def _dispatch(self, events: list[EventEnvelope], sends: Sends, trace: Trace) -> None:
        dispatches = [d for event in events for d in self.spec.outbound(fact_of(event))]
        # a fan-out's commands go out together: local ones batch at their writers
        done = await asyncio.gather(
            *(self._send(dispatch, sends, trace) for dispatch in dispatches),
            return_exceptions=True,
        )
        raise_first(done)

    async def _send(self, dispatch: Dispatch, sends: Sends, trace: Trace) -> None:
        """Decided here when this worker decides the target's partition (and its answer
        taken here too), else sent on the target's command topic. Either way the batch
        that caused it stores its position only after: a crash before sends it again,
        with the same command id, which its target applies once. Both ways carry the
        trace: in memory here, in the record's headers there."""
        await faults.reached("dispatch")  # `@2`: the fan-out's first command is handed over
        command = dispatch.command
        target = HERE.get(dispatch.target) if settings.saga_local_dispatch else None
        if target is not None and target.side.owns(command.aggregate_id):
            try:
                result = await target.side.submit(command, trace)
            except ConnectionError:
                pass  # moved meanwhile: its new owner reads it from the command topic
            else:
                if dispatch.reply is not None:
                    await HERE[dispatch.reply].take_answer(result, sends, trace)
                return
        if dispatch.reply is not None:
            reply_to = settings.topic(answer_topic(dispatch.reply))
            command = command.model_copy(update={"reply_to": reply_to})
        topic = TOPICS[command_topic(dispatch.target)]
        value = command.model_dump_json().encode()
        headers = trace_headers(trace)
        sends.append(await topic.send(key=command.aggregate_id, value=value, headers=headers))

    async def take_answer(self, result: CommandResult, sends: Sends, trace: Trace) -> None:
        """The answer to a command this service dispatched, decided on this worker: its
        answer policy's command is decided here too if its partition is, else the answer
        goes to the service's answers topic, as a remote target's would."""
        if self._answers is None:
            raise LookupError(f"service {self.spec.name} wants no answers")
        topic, policy = self._answers
        command = policy(result)
        if command is None:
            return
        if self.side.owns(command.aggregate_id):
            await faults.reached("answer-here")
            try:
                answered = await self.side.submit(command, trace)
            except ConnectionError:
                pass
            else:
                if answered.events and self.spec.outbound is not no_dispatch:
                    await self._dispatch(answered.events, sends, trace)
                return
        sends.append(await self._reply(topic, result.correlation_id, result, trace))


def raise_first(outcomes: list[Any]) -> None:
    """Every task of a gather has ended: raise the first error among them, if any."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
