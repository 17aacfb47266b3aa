"""A service of the saga: one aggregate type, the facts it reacts to, the commands it sends.

One agent per service reads all of the service's inputs as one stream (its own
command topic, the event topics it reacts to, the answers to its commands), in
order. Each message is turned into a command (a client's or another service's
command as it is, a fact by the service's policy) and queued at the command
side, which decides what has queued in batches (agents/command_side.py); the
agent goes on to the next message at once. When a command is answered:

1. the answer goes to the reply topic it names, if any;
2. the events it decided are turned into commands for other services
   (outbound policy): a command for a partition this worker decides is decided
   here, and its answer taken here too (no command or answer record, no hop);
   any other is sent on its target's command topic, keyed by its aggregate;
3. only then is the message acknowledged, so its offset can be committed; acks
   go in offset order per partition (agents/acks.py), so a commit never passes a
   message still being processed.

A message faust fetched and never handed over is read back from the log and taken
in the agent's turn, in order with its own (agents/skipped_offsets.py).

A crash before step 3 redelivers the message: its command is answered from the
log (appending nothing) and steps 1 and 2 run again; receivers apply a repeated
command once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from faust.types import TP, EventT, TopicT

from agents.acks import InOrderAcks
from agents.command_side import CommandSide, NotOwner
from agents.dead_letters import SYSTEM, bury, guarded, hold
from agents.skipped_offsets import quiet_partitions
from app import faults
from app.main import app
from app.settings import settings
from app.stalls import stalls
from app.topics import TOPICS
from domain.saga import Dispatch, fact_of
from domain.topology import (
    Answer,
    Inbound,
    ServiceSpec,
    answer_topic,
    command_topic,
    no_dispatch,
)
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope
from models.upcasting import decode_event

log = logging.getLogger(__name__)

Queued = tuple[CommandEnvelope, "asyncio.Future[CommandResult]"]
"""A message's command, and the future of its answer."""

HERE: dict[str, Service] = {}
"""This worker's services by name: a command for one of them may be decided here."""


class Service:
    """One service of the topology (domain/topology.py) on this worker: its agent's loop."""

    def __init__(self, spec: ServiceSpec, side: CommandSide) -> None:
        self.spec = spec
        self.side = side
        self.name = spec.name
        self._inputs = [settings.topic(topic) for topic in spec.inputs]
        self._commands = {settings.topic(spec.commands)} if spec.commands else set()
        self._reacts_to: dict[str, Inbound] = {
            settings.topic(topic): policy for topic, policy in spec.reacts_to.items()
        }
        self._answers: tuple[str, Answer] | None = None
        if spec.answers is not None:
            self._answers = (settings.topic(spec.answers[0]), spec.answers[1])
        self._reply_topics: dict[str, TopicT] = {}
        self.acks = InOrderAcks()
        HERE[spec.name] = self
        app.on_partitions_revoked.connect(cast(Any, self._on_revoked))

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        self.acks.revoked(revoked)

    async def run(self, agent: str, stream: Any) -> None:
        """The agent's loop: queue each message's command in order, finish each apart."""
        room = asyncio.Semaphore(settings.service_max_unanswered)
        turn = asyncio.Lock()  # a message read back from the log waits for it too

        async def finish_later(event: EventT, queued: Queued) -> None:
            self.acks.taken(event)  # again for a message faust skipped, read back late
            await room.acquire()
            finishing = asyncio.ensure_future(self._finish(agent, event, *queued))
            finishing.add_done_callback(lambda _: room.release())

        async def take(event: EventT) -> None:
            self.acks.taken(event)
            queued = await guarded(agent, event, self.submit, then=finish_later)
            if queued is None:  # no command in it, dead-lettered, or its partition moved
                if event.message.tp in app.consumer.assignment():
                    self.acks.done(event)
                else:  # not acked: the next owner reads it again
                    self.acks.give_up(event)
                return
            await finish_later(event, queued)

        reader = quiet_partitions.watch(
            agent, self._inputs, lambda lost: take(cast(EventT, lost)), turn
        )
        async for event in stream.noack().events():  # acked by _finish
            reader.taken += 1  # not quiet
            async with turn:
                await take(event)

    async def submit(self, topic: str, raw: bytes) -> Queued | None:
        """Queue the command a message means (ValueError if undecodable; NotOwner if its
        aggregate is not decided here)."""
        command = self._command(topic, raw)
        if command is None:
            return None
        return command, self.side.submit(command)

    def _command(self, topic: str, raw: bytes) -> CommandEnvelope | None:
        if topic in self._commands:
            return CommandEnvelope.model_validate_json(raw)
        if self._answers is not None and topic == self._answers[0]:
            return self._answers[1](CommandResult.model_validate_json(raw))
        return self._reacts_to[topic](fact_of(decode_event(raw)))

    async def _finish(
        self,
        agent: str,
        event: EventT,
        command: CommandEnvelope,
        answer: asyncio.Future[CommandResult],
    ) -> None:
        try:
            result = await answer
        except NotOwner:  # the partition moved: its new owner gets the message again
            self.acks.give_up(event)
            return
        while True:
            try:
                if command.reply_to:
                    await self._reply(command.reply_to, command.correlation_id, result)
                if result.events and self.spec.outbound is not no_dispatch:
                    await self._dispatch(result.events)
                break
            except SYSTEM as error:
                stalls.failed(agent, error)
                if not await hold(agent, event):
                    self.acks.give_up(event)
                    return
            except Exception as error:  # a policy that fails on this answer: a bug
                if not await bury(agent, event.message, error, 1, lambda: hold(agent, event)):
                    self.acks.give_up(event)
                    return
                break
        stalls.cleared(agent)
        self.acks.done(event)

    async def _reply(self, reply_to: str, key: str, result: CommandResult) -> None:
        """Keyed by the correlation id: a saga's answers land in its order's partition."""
        await faults.reached("reply")
        topic = self._reply_topics.get(reply_to)
        if topic is None:
            topic = self._reply_topics[reply_to] = app.topic(
                reply_to, key_serializer="raw", value_serializer="raw"
            )
        await topic.send(key=key, value=result.model_dump_json().encode())

    async def _dispatch(self, events: list[EventEnvelope]) -> None:
        for event in events:
            for dispatch in self.spec.outbound(fact_of(event)):
                await faults.reached("dispatch")
                await self._send(dispatch)

    async def _send(self, dispatch: Dispatch) -> None:
        """Decided here when this worker decides the target's partition (and its answer
        taken here too), else sent on the target's command topic. Either way the message
        that caused it is acknowledged only after: a crash before sends it again, with
        the same command id, which its target applies once."""
        command = dispatch.command
        target = HERE.get(dispatch.target) if settings.saga_local_dispatch else None
        if target is not None and target.side.owns(command.aggregate_id):
            try:
                result = await target.side.submit(command)
            except NotOwner:
                pass  # moved meanwhile: its new owner reads it from the command topic
            else:
                if dispatch.reply is not None:
                    await HERE[dispatch.reply].take_answer(result)
                return
        if dispatch.reply is not None:
            reply_to = settings.topic(answer_topic(dispatch.reply))
            command = command.model_copy(update={"reply_to": reply_to})
        topic = TOPICS[command_topic(dispatch.target)]
        # handed to the producer, not awaited: faust flushes it before committing an
        # offset, and a redelivered message dispatches the same commands (same ids)
        await topic.send(key=command.aggregate_id, value=command.model_dump_json().encode())

    async def take_answer(self, result: CommandResult) -> None:
        """The answer to a command this service dispatched, decided on this worker: its
        answer policy's command is decided here too if its partition is, else the answer
        goes to the service's answers topic, as a remote target's would."""
        if self._answers is None:
            raise LookupError(f"service {self.name} wants no answers")
        topic, policy = self._answers
        command = policy(result)
        if command is None:
            return
        if self.side.owns(command.aggregate_id):
            await faults.reached("answer-here")
            try:
                answered = await self.side.submit(command)
            except NotOwner:
                pass
            else:
                if answered.events and self.spec.outbound is not no_dispatch:
                    await self._dispatch(answered.events)
                return
        await self._reply(topic, result.correlation_id, result)
