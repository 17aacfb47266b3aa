"""Reading events written by older code: every consumer sees the newest shape.

An upcaster turns one schema version of an event type into the next; chained,
they bring any stored version up to the current one before a handler sees it.
An event newer than this code knows cannot be understood safely: it is
refused with `UnknownSchemaVersion`, and its consumer dead-letters it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from models.contexts import CONTEXTS, Upcaster
from models.envelope import EventEnvelope
from models.ids import ID_PATTERN


class UnknownSchemaVersion(ValueError):
    """An event from the future (or from elsewhere): this code cannot read it."""


EVENT_MODELS: dict[str, Any] = {
    event_type: model for context in CONTEXTS for event_type, model in context.events.items()
}
"""Every event type -> the pydantic model of its payload's current version."""

CURRENT_VERSIONS: dict[str, int] = {
    name: model.schema_version for name, model in EVENT_MODELS.items()
}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    step: upcaster for context in CONTEXTS for step, upcaster in context.upcasters.items()
}
"""(event type, version) -> the upcaster to version + 1."""


def upcast(envelope: EventEnvelope) -> EventEnvelope:
    """The envelope with its payload in the current version of its event type."""
    current = CURRENT_VERSIONS.get(envelope.event_type)
    if current is None:
        raise UnknownSchemaVersion(f"unknown event type {envelope.event_type!r}")
    version = envelope.schema_version
    if version > current:
        raise UnknownSchemaVersion(
            f"{envelope.event_type} v{version} is newer than this code (v{current})"
        )
    if version == current:
        return envelope
    payload = envelope.payload
    while version < current:
        step = UPCASTERS.get((envelope.event_type, version))
        if step is None:
            raise UnknownSchemaVersion(
                f"no upcaster for {envelope.event_type} v{version} -> v{version + 1}"
            )
        payload = step(payload)
        version += 1
    return envelope.model_copy(update={"payload": payload, "schema_version": version})


class EventHead(NamedTuple):
    """What a fold uses of an event; its payload in today's shape (not yet validated)."""

    aggregate_id: str
    aggregate_version: int
    event_type: str
    occurred_at: datetime
    payload: dict[str, Any]


_ID = re.compile(ID_PATTERN)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ENVELOPE_FIELDS = frozenset(EventEnvelope.model_fields)


def fold_head(raw: bytes) -> EventHead:
    """The fields a fold uses, read once. Events of our own topics in today's schema
    take a fast path (orjson; every envelope field's type and format checked as
    EventEnvelope would, no model built); anything off, and any older schema
    version, goes through `decode_event`, whose error (ValidationError,
    UnknownSchemaVersion) says what is wrong. The payload is validated by the
    fold's own event model."""
    try:
        data = orjson.loads(raw)
        event_type = data["event_type"]
        version = data["aggregate_version"]
        aggregate_id = data["aggregate_id"]
        occurred_at = datetime.fromisoformat(data["occurred_at"])
        if (
            data.keys() == _ENVELOPE_FIELDS
            and data["schema_version"] == CURRENT_VERSIONS.get(event_type)
            and type(version) is int
            and version >= 1
            and type(aggregate_id) is str
            and _ID.fullmatch(aggregate_id)
            and occurred_at.tzinfo is not None
            and type(data["payload"]) is dict
            and _UUID.fullmatch(data["event_id"])
            # spelled out, not all(...) over a tuple: this runs once per event folded
            and type(data["aggregate_type"]) is str
            and type(data["correlation_id"]) is str
            and type(data["causation_id"]) is str
        ):
            return EventHead(aggregate_id, version, event_type, occurred_at, data["payload"])
    except (ValueError, TypeError, KeyError, AttributeError):  # orjson's error is a ValueError
        pass
    envelope = decode_event(raw)
    return EventHead(
        envelope.aggregate_id,
        envelope.aggregate_version,
        envelope.event_type,
        envelope.occurred_at,
        envelope.payload,
    )


def decode_event(raw: bytes) -> EventEnvelope:
    """Bytes from an event topic -> an envelope in the newest shape, its payload valid.

    Raises ValueError (pydantic's ValidationError, UnknownSchemaVersion): a message
    that will never decode, which its consumer dead-letters at once.
    """
    envelope = upcast(EventEnvelope.model_validate_json(raw))
    EVENT_MODELS[envelope.event_type].model_validate(envelope.payload)
    return envelope
