"""Reading events written by older code: every consumer sees the newest shape.

An upcaster turns one schema version of an event type into the next; chained,
they bring any stored version up to the current one before a handler sees it.
An event newer than this code knows cannot be understood safely: it is
refused with `UnknownSchemaVersion`, and its consumer dead-letters it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models import accounts, inventory, orders, payments, shipping
from models.envelope import EventEnvelope

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]


class UnknownSchemaVersion(ValueError):
    """An event from the future (or from elsewhere): this code cannot read it."""


EVENT_MODELS: dict[str, Any] = {
    event_type: model
    for registry in (
        accounts.EVENTS,
        orders.EVENTS,
        payments.EVENTS,
        inventory.STOCK_EVENTS,
        inventory.RESERVATION_EVENTS,
        shipping.EVENTS,
    )
    for event_type, model in registry.items()
}
"""Every event type -> the pydantic model of its payload's current version."""

CURRENT_VERSIONS: dict[str, int] = {
    name: model.schema_version for name, model in EVENT_MODELS.items()
}


def _order_placed_v1_to_v2(payload: Payload) -> Payload:
    """v2 added `discount`; v1 orders had none."""
    return {**payload, "discount": "0.00"}


def _order_placed_v2_to_v3(payload: Payload) -> Payload:
    """v3 added `shipping_address`; earlier orders did not say."""
    return {**payload, "shipping_address": None}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("OrderPlaced", 1): _order_placed_v1_to_v2,
    ("OrderPlaced", 2): _order_placed_v2_to_v3,
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


def decode_event(raw: bytes) -> EventEnvelope:
    """Bytes from an event topic -> an envelope in the newest shape, its payload valid.

    Raises ValueError (pydantic's ValidationError, UnknownSchemaVersion): a message
    that will never decode, which its consumer dead-letters at once.
    """
    envelope = upcast(EventEnvelope.model_validate_json(raw))
    EVENT_MODELS[envelope.event_type].model_validate(envelope.payload)
    return envelope
