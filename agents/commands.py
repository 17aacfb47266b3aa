"""The command side shared by every aggregate: decide, record, publish, reply.

For each command, in partition order: if its result is recorded, write its
records again, answer with it and publish its events again (idempotency);
otherwise run the decider against the stored state, record the result, then
the new state, each acknowledged by Kafka (the table changelogs) before the
next, and only then publish the events.

So an event never exists without the state that produced it: whoever reacts
to it, on any worker and after any crash, finds that state. A crash before the
events reached Kafka leaves the command unacknowledged; its redelivery finds
the recorded result and publishes the same events (same ids and versions:
consumers skip what they have already folded).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from faust.types import TopicT
from pydantic import BaseModel

from app import faults
from app.main import app
from domain.decider import Decider
from models.envelope import CommandEnvelope, CommandResult, Rejection, utc_now

log = logging.getLogger(__name__)


def fingerprint(command: CommandEnvelope) -> str:
    """What makes two commands with one idempotency key the same request."""
    request = {
        "type": command.command_type,
        "aggregate_id": command.aggregate_id,
        "expected_version": command.expected_version,
        "payload": command.payload,
    }
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_reused(command: CommandEnvelope, version: int) -> CommandResult:
    return CommandResult(
        command_id=command.command_id,
        command_type=command.command_type,
        aggregate_id=command.aggregate_id,
        correlation_id=command.correlation_id,
        outcome="rejected",
        status=422,
        version=version,
        rejection=Rejection(
            code="idempotency_key_reused",
            reason="this Idempotency-Key was already used for a different request",
        ),
    )


@dataclass
class CommandHandler:
    """Applies one aggregate type's commands; one instance per command topic."""

    decider: Decider[Any, Any, Any]
    state: Any  # faust Table: aggregate id -> state dict
    results: Any  # faust Table: "aggregate_id/command_id" -> recorded result
    events: TopicT
    _reply_topics: dict[str, TopicT] = field(default_factory=dict)

    async def handle(self, raw: bytes) -> CommandResult:
        """Apply a command from its topic and answer it (ValueError if undecodable)."""
        command = CommandEnvelope.model_validate_json(raw)
        result = await self.apply(command)
        if command.reply_to:
            await self._reply(command.reply_to, command.correlation_id, result)
        return result

    async def apply(self, command: CommandEnvelope) -> CommandResult:
        key = f"{command.aggregate_id}/{command.command_id}"
        request_print = fingerprint(command)
        recorded = self.results.get(key)
        if recorded is not None:
            result = CommandResult.model_validate(recorded["result"])
            if recorded["fingerprint"] != request_print:
                return key_reused(command, result.version)
            if result.events:
                await self._record_again(command.aggregate_id, key, recorded, result)
            await self._publish(result)  # they may not have reached Kafka before a crash
            return result
        state = self.load(command.aggregate_id)
        result, new_state = self.decider.execute(command, state, utc_now())
        self.results[key] = {"fingerprint": request_print, "result": result.model_dump(mode="json")}
        if not result.events:  # a rejection: a lost record only means deciding it again
            self.results.forget_writes()
            return result
        # the answer is durable before the state: a restored state that holds the
        # command's effect then always finds its answer (else the command would be
        # decided again on top of its own effect); a restored answer whose state
        # was lost rolls the state forward from the answer's events (_record_again)
        await self._durable(self.results)
        if result.outcome == "accepted":
            self.state[command.aggregate_id] = new_state.model_dump(mode="json")
            await self._durable(self.state)
        await self._publish(result)
        return result

    def load(self, aggregate_id: str) -> BaseModel:
        stored = self.state.get(aggregate_id)
        if stored is None:
            return self.decider.initial_state(aggregate_id)
        return self.decider.state_type.model_validate(stored)

    async def _record_again(
        self, aggregate_id: str, key: str, recorded: Any, result: CommandResult
    ) -> None:
        """Write a redelivered command's records again, the state rolled forward to its events.

        A kill between writing them locally and Kafka's ack leaves them in this
        worker's store only, or the answer in the changelog without the state; a
        worker restoring from the changelog would decide the next command at the
        old version again.
        """
        self.results[key] = recorded
        await self._durable(self.results)
        state = self.load(aggregate_id)
        for event in result.events:
            if event.aggregate_version == state.version + 1:  # type: ignore[attr-defined]
                state = self.decider.apply(state, event)
        if state.version > 0:  # type: ignore[attr-defined]  # (a stored state always is)
            self.state[aggregate_id] = state.model_dump(mode="json")
            await self._durable(self.state)

    async def _durable(self, table: Any) -> None:
        """Wait until the table's writes so far are in its changelog."""
        if app.in_transaction:
            # exactly_once: state, result, events and the offset commit are one
            # transaction; waiting would only widen the window in which faust's
            # timer-driven commit splits one message's outputs
            table.forget_writes()
            return
        await table.confirm_writes()

    async def _publish(self, result: CommandResult) -> None:
        # not awaited: before committing an offset faust flushes the producer, and an
        # uncommitted command is redelivered and publishes its recorded events again
        await faults.reached("append")
        for event in result.events:
            await self.events.send(key=event.aggregate_id, value=event.model_dump_json().encode())

    async def _reply(self, reply_to: str, key: str, result: CommandResult) -> None:
        """Keyed by the correlation id: a saga's answers land in its order's partition."""
        await faults.reached("reply")
        topic = self._reply_topics.get(reply_to)
        if topic is None:
            topic = self._reply_topics[reply_to] = app.topic(
                reply_to, key_serializer="raw", value_serializer="raw"
            )
        await topic.send(key=key, value=result.model_dump_json().encode())
