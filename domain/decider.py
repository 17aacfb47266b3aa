"""One aggregate's rules bundled as a decider, and the command execution they share.

`execute` is the whole command side in a pure function: validate the payload,
check the expected version, decide, stamp each event with its envelope
(deterministic id, next version) and fold it into the state. `replay` is the
same fold from nothing, which serves temporal queries and rebuilds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ValidationError

from domain.errors import DomainError, check_expected_version
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope, Rejection, event_id_for

C = TypeVar("C", bound=BaseModel)
E = TypeVar("E", bound=BaseModel)
S = TypeVar("S", bound=BaseModel)


class InvalidCommand(DomainError):
    code = "invalid_command"


@dataclass(frozen=True)
class Decider(Generic[C, E, S]):
    aggregate_type: str
    state_type: type[S]
    commands: Mapping[str, type[C]]
    events: Mapping[str, type[E]]
    initial_state: Callable[[str], S]
    decide: Callable[[C, S], list[E]]
    evolve: Callable[[S, E, datetime | None], S]

    def execute(self, command: CommandEnvelope, state: S, now: datetime) -> tuple[CommandResult, S]:
        """Apply one command: the recorded result and the state after it."""
        version = _version(state)
        try:
            decided = self._decide(command, state)
        except DomainError as error:
            rejection = Rejection(code=error.code, reason=error.reason, details=error.details)
            result = CommandResult.answering(
                command,
                outcome="rejected",
                version=version,
                rejection=rejection,
            )
            return result, state
        envelopes = []
        for index, event in enumerate(decided):
            envelope = EventEnvelope(
                event_id=event_id_for(self.aggregate_type, command.command_id, index),
                event_type=type(event).event_type,  # type: ignore[attr-defined]
                schema_version=type(event).schema_version,  # type: ignore[attr-defined]
                aggregate_type=self.aggregate_type,
                aggregate_id=command.aggregate_id,
                aggregate_version=_version(state) + 1,
                occurred_at=now,
                correlation_id=command.correlation_id,
                causation_id=command.causation_id or command.command_id,
                payload=event.model_dump(mode="json"),
            )
            state = self.evolve(state, event, now)
            envelopes.append(envelope)
        result = CommandResult.answering(
            command,
            outcome="accepted",
            version=_version(state),
            events=envelopes,
        )
        return result, state

    def _decide(self, command: CommandEnvelope, state: S) -> list[E]:
        command_type = self.commands.get(command.command_type)
        if command_type is None:
            raise InvalidCommand(f"unknown command type {command.command_type!r}")
        try:
            typed = command_type.model_validate(command.payload)
        except ValidationError as error:
            # as JSON: the rejection is recorded and sent as the answer, and a raw
            # error's `ctx` can hold the exception object itself
            raise InvalidCommand(
                "invalid command payload", errors=json.loads(error.json(include_url=False))
            ) from None
        check_expected_version(command.expected_version, _version(state))
        return self.decide(typed, state)

    def event_of(self, envelope: EventEnvelope) -> E:
        """The typed event inside an envelope."""
        return self.events[envelope.event_type].model_validate(envelope.payload)

    def apply(self, state: S, envelope: EventEnvelope) -> S:
        return self.evolve(state, self.event_of(envelope), envelope.occurred_at)

    def replay(self, aggregate_id: str, envelopes: Iterable[EventEnvelope]) -> S:
        """The state after a sequence of this aggregate's events (in version order)."""
        state = self.initial_state(aggregate_id)
        for envelope in envelopes:
            state = self.apply(state, envelope)
        return state


def _version(state: BaseModel) -> int:
    return int(cast(Any, state).version)
