"""The envelopes every message travels in: events, commands and command results.

The envelope carries what any consumer needs without knowing the payload:
identity, ordering (aggregate version), time, and the flow (correlation and
causation). Payloads are validated against their event or command type.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from models.ids import AggregateId


def utc_now() -> datetime:
    return datetime.now(UTC)


def event_id_for(aggregate_type: str, command_id: str, index: int) -> uuid.UUID:
    """Deterministic: the same command always yields the same event ids. The aggregate
    type is part of it because one fact can cause a command in several services."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shop:{aggregate_type}:{command_id}:{index}")


class EventEnvelope(BaseModel):
    """An immutable fact about one aggregate, as stored on an event topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    event_type: str
    schema_version: int = Field(ge=1)
    aggregate_type: str
    aggregate_id: AggregateId
    aggregate_version: int = Field(ge=1)
    occurred_at: AwareDatetime
    correlation_id: str
    causation_id: str
    payload: dict[str, Any]


class CommandEnvelope(BaseModel):
    """A request to change one aggregate, sent keyed by its id to a command topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str
    command_type: str
    aggregate_id: AggregateId
    expected_version: int | None = None
    payload: dict[str, Any]
    correlation_id: str
    causation_id: str | None = None
    """The event that caused this command (saga steps); None for a client's command."""
    issued_at: AwareDatetime = Field(default_factory=utc_now)
    reply_to: str | None = None
    """The reply topic of the worker that waits for the answer, if any."""


class Rejection(BaseModel):
    """Why a command was refused: a stable code, a sentence, and the facts."""

    code: str
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)


class CommandResult(BaseModel):
    """The recorded answer to a command; replayed as-is for a repeated command. It says
    what happened (`outcome`, the rejection's code), not how a transport answers it: the
    web layer maps it to an HTTP status (web/http.py)."""

    model_config = ConfigDict(extra="forbid")

    command_id: str
    command_type: str = ""
    aggregate_id: str
    correlation_id: str = ""
    outcome: Literal["accepted", "rejected"]
    version: int
    """The aggregate's version after the command (unchanged if rejected)."""
    events: list[EventEnvelope] = Field(default_factory=list)
    rejection: Rejection | None = None

    @model_validator(mode="before")
    @classmethod
    def _without_http_status(cls, data: Any) -> Any:
        """Answers from workers of an earlier version carry the HTTP status they mapped to
        (a model with a `status` of its own, the web's answer, keeps it)."""
        if isinstance(data, dict) and "status" in data and "status" not in cls.model_fields:
            return {k: v for k, v in data.items() if k != "status"}
        return data

    @classmethod
    def answering(cls, command: CommandEnvelope, **answer: Any) -> CommandResult:
        """The answer to `command`: its identity fields, and what `answer` says."""
        return cls(
            command_id=command.command_id,
            command_type=command.command_type,
            aggregate_id=command.aggregate_id,
            correlation_id=command.correlation_id,
            **answer,
        )
