"""A command from its topic: decided by the aggregate's command side, answered on its reply topic.

The command side (agents/command_side.py) decides and appends; its answer is
derived from the log, so a redelivered command, after any crash and on any
worker, gets the same answer and appends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from faust.types import TopicT

from agents.command_side import CommandSide
from app import faults
from app.main import app
from models.envelope import CommandEnvelope, CommandResult


@dataclass
class CommandHandler:
    """Applies one aggregate type's commands through its command side."""

    side: CommandSide
    _reply_topics: dict[str, TopicT] = field(default_factory=dict)

    async def handle(self, raw: bytes) -> CommandResult:
        """Apply a command from its topic and answer it (ValueError if undecodable)."""
        command = CommandEnvelope.model_validate_json(raw)
        result = await self.apply(command)
        if command.reply_to:
            await self._reply(command.reply_to, command.correlation_id, result)
        return result

    async def apply(self, command: CommandEnvelope) -> CommandResult:
        return await self.side.decide(command)

    async def _reply(self, reply_to: str, key: str, result: CommandResult) -> None:
        """Keyed by the correlation id: a saga's answers land in its order's partition."""
        await faults.reached("reply")
        topic = self._reply_topics.get(reply_to)
        if topic is None:
            topic = self._reply_topics[reply_to] = app.topic(
                reply_to, key_serializer="raw", value_serializer="raw"
            )
        await topic.send(key=key, value=result.model_dump_json().encode())
