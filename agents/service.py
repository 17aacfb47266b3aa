"""A service of the saga: one aggregate type, the facts it reacts to, the commands it sends.

One agent per service reads all of the service's inputs as one stream (its own
command topic, the event topics it reacts to, the answers to its commands), so
the aggregate is changed by one loop at a time. For each message:

1. a command (from a client or another service) is applied and answered;
   a fact is turned into a command by the service's policy and applied;
2. the events the aggregate decided are turned into commands for other
   services (outbound policy) and sent, keyed by the aggregate they address.

Step 2 also runs for a command that was already applied (its recorded events),
so a crash between recording and sending loses nothing: receivers apply a
repeated command once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from faust.types import TopicT

from agents.commands import CommandHandler
from app import faults
from domain.saga import Dispatch
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope
from models.upcasting import decode_event

log = logging.getLogger(__name__)

Inbound = Callable[[EventEnvelope], CommandEnvelope | None]
Answer = Callable[[CommandResult], CommandEnvelope | None]
Outbound = Callable[[EventEnvelope], list[Dispatch]]


def _no_dispatch(event: EventEnvelope) -> list[Dispatch]:
    return []


@dataclass
class Service:
    name: str
    handler: CommandHandler
    commands: TopicT | None = None
    """Its own command topic (values are CommandEnvelope)."""
    reacts_to: Mapping[str, Inbound] = field(default_factory=dict)
    """Event topic name -> policy turning an event into a command for this aggregate."""
    answers: tuple[str, Answer] | None = None
    """(answer topic name, policy turning an answer into a command for this aggregate)."""
    outbound: Outbound = _no_dispatch
    targets: Mapping[str, TopicT] = field(default_factory=dict)
    """Dispatch target -> command topic."""
    answer_topics: Mapping[str, str] = field(default_factory=dict)
    """Dispatch reply name -> topic name where answers go."""

    async def process(self, topic: str, raw: bytes) -> CommandResult | None:
        """Handle one message of any of the service's inputs."""
        result: CommandResult | None
        if self.commands is not None and topic in self.commands.topics:
            result = await self.handler.handle(raw)
        else:
            command = self._translate(topic, raw)
            result = None if command is None else await self.handler.apply(command)
        if result is not None and result.events:
            await self._dispatch(result.events)
        return result

    def _translate(self, topic: str, raw: bytes) -> CommandEnvelope | None:
        """The command a fact means for this aggregate (raises ValueError if undecodable)."""
        if self.answers is not None and topic == self.answers[0]:
            return self.answers[1](CommandResult.model_validate_json(raw))
        return self.reacts_to[topic](decode_event(raw))

    async def _dispatch(self, events: list[EventEnvelope]) -> None:
        # not awaited: faust flushes the producer before committing the input's offset,
        # and a redelivered input dispatches the same commands (same ids) again
        for event in events:
            for dispatch in self.outbound(event):
                await faults.reached("dispatch")
                command = dispatch.command
                if dispatch.reply is not None:
                    command = command.model_copy(
                        update={"reply_to": self.answer_topics[dispatch.reply]}
                    )
                topic = self.targets[dispatch.target]
                value = command.model_dump_json().encode()
                await topic.send(key=command.aggregate_id, value=value)
