"""The contexts, each declared once: its name, its topics, its commands and its events.

`models.upcasting` (which event types exist, their current versions, the upcasters
from older ones), `models.contracts` (the doc's contexts and topics) and
`app/topics.py` (the event, command and answer topics to create) read this one
list, so a new context or event type is added here and nowhere else. Topic names
are logical, as `domain/topology.py` uses them: `settings.topic` adds the prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from models import accounts, inventory, orders, orders_history, payments, shipping

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""A payload of one schema version -> the same fact in the next version's shape."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """One aggregate type's commands and events, and the topics they travel on."""

    name: str
    """The context's name in the contracts (`docs/contracts.json`, `GET /contracts`)."""
    event_topic: str
    """Its event store: every event of `events`, keyed by aggregate id, kept forever."""
    command_topic: str | None = None
    """Where clients and other services send it commands; None: it only reacts to
    other contexts' events and to answers."""
    answer_topic: str | None = None
    """Where the answers to the commands it dispatches come back; None: it asks nobody."""
    commands: Mapping[str, type[BaseModel]]
    """Command type -> its payload model."""
    events: Mapping[str, type[BaseModel]]
    """Event type -> the payload model of its current schema version."""
    history: tuple[type[BaseModel], ...] = ()
    """Earlier schema versions of its event types that still have a model: the contracts
    record their schemas; `upcasters` bring their payloads up to date."""
    upcasters: Mapping[tuple[str, int], Upcaster] = field(default_factory=dict)
    """(event type, schema version) -> the upcaster to version + 1."""


CONTEXTS: tuple[Context, ...] = (
    Context(
        name="accounts",
        event_topic="accounts.events",
        command_topic="accounts.commands",
        commands=accounts.COMMANDS,
        events=accounts.EVENTS,
    ),
    Context(
        name="orders",
        event_topic="orders.events",
        command_topic="orders.commands",
        commands=orders.COMMANDS,
        events=orders.EVENTS,
        history=orders_history.HISTORICAL_EVENTS,
        upcasters={
            ("OrderPlaced", 1): orders_history.order_placed_v1_to_v2,
            ("OrderPlaced", 2): orders_history.order_placed_v2_to_v3,
        },
    ),
    Context(
        name="payments",
        event_topic="payments.events",
        answer_topic="payments.answers",
        commands=payments.COMMANDS,
        events=payments.EVENTS,
    ),
    # stock per SKU; the doc and the topics call it inventory, domain/topology.py `stock`
    Context(
        name="inventory",
        event_topic="inventory.events",
        command_topic="inventory.commands",
        commands=inventory.STOCK_COMMANDS,
        events=inventory.STOCK_EVENTS,
    ),
    Context(
        name="reservations",
        event_topic="reservations.events",
        answer_topic="reservations.answers",
        commands=inventory.RESERVATION_COMMANDS,
        events=inventory.RESERVATION_EVENTS,
    ),
    Context(
        name="shipping",
        event_topic="shipping.events",
        commands=shipping.COMMANDS,
        events=shipping.EVENTS,
    ),
)
"""Every context, in the order the contracts doc lists them and the topics are made."""

EVENT_TOPICS: tuple[str, ...] = tuple(context.event_topic for context in CONTEXTS)
COMMAND_TOPICS: tuple[str, ...] = tuple(
    context.command_topic for context in CONTEXTS if context.command_topic is not None
)
ANSWER_TOPICS: tuple[str, ...] = tuple(
    context.answer_topic for context in CONTEXTS if context.answer_topic is not None
)
