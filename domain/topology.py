"""The saga's wiring as data: every service, what it decides, what it reads, whom it asks.

One table read by the saga (agents/services.py builds each service's command
side and reader from it) and by the in-memory saga story
(tests/unit/test_saga_story.py), so the story runs the wiring that runs in
production. Topic names are logical: settings.topic adds the namespace prefix.

To follow one step of the saga: find the event's topic under some service's
`reacts_to`; its policy (domain/saga.py) gives that service's command; the
events its decider accepts go to its `events` topic; its `outbound` policy
turns them into commands for a `Target`'s `commands` topic, whose answers come
back on the asker's `answers` topic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain import saga
from domain.accounts import ACCOUNTS
from domain.decider import Decider
from domain.inventory import RESERVATIONS, STOCKS
from domain.orders import ORDERS
from domain.payments import PAYMENTS
from domain.shipping import SHIPMENTS
from models.envelope import CommandEnvelope, CommandResult

Inbound = Callable[[saga.Fact], CommandEnvelope | None]
Answer = Callable[[CommandResult], CommandEnvelope | None]
Outbound = Callable[[saga.Fact], list[saga.Dispatch]]


def no_dispatch(fact: saga.Fact) -> list[saga.Dispatch]:
    return []


@dataclass(frozen=True)
class ServiceSpec:
    """One service: an aggregate type's decider and the topics around it."""

    name: str
    decider: Decider[Any, Any, Any]
    events: str
    """Where its decider's events are appended (its event store)."""
    commands: str | None = None
    """Its own command topic: clients' commands and other services' `Dispatch`es."""
    reacts_to: Mapping[str, Inbound] = field(default_factory=dict)
    """Event topic -> the policy turning each event into a command for this service."""
    answers: tuple[str, Answer] | None = None
    """The topic the answers to its dispatched commands come back on, and the policy
    turning an answer into a command for this service."""
    outbound: Outbound = no_dispatch
    """Its events -> commands for other services."""

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every topic it reads (co-partitioned: keyed by the aggregate the command
        addresses), in the saga's one batch per partition (agents/services.py)."""
        own = (self.commands,) if self.commands else ()
        answers = (self.answers[0],) if self.answers else ()
        return own + tuple(self.reacts_to) + answers


TOPOLOGY: tuple[ServiceSpec, ...] = (
    ServiceSpec("accounts", ACCOUNTS, events="accounts.events", commands="accounts.commands"),
    ServiceSpec(
        "orders",
        ORDERS,
        events="orders.events",
        commands="orders.commands",
        reacts_to={
            "payments.events": saga.orders_inbound,
            "reservations.events": saga.orders_inbound,
            "shipping.events": saga.orders_inbound,
        },
    ),
    ServiceSpec(
        "payments",
        PAYMENTS,
        events="payments.events",
        reacts_to={"orders.events": saga.payments_inbound},
        answers=("payments.answers", saga.payments_answer),
        outbound=saga.payments_outbound,
    ),
    ServiceSpec("stock", STOCKS, events="inventory.events", commands="inventory.commands"),
    ServiceSpec(
        "reservations",
        RESERVATIONS,
        events="reservations.events",
        reacts_to={"orders.events": saga.reservations_inbound},
        answers=("reservations.answers", saga.reservations_answer),
        outbound=saga.reservations_outbound,
    ),
    ServiceSpec(
        "shipping",
        SHIPMENTS,
        events="shipping.events",
        reacts_to={"orders.events": saga.shipping_inbound},
    ),
)

SERVICES: Mapping[str, ServiceSpec] = {spec.name: spec for spec in TOPOLOGY}
"""The topology by service name (a Dispatch's target and reply name services)."""


def command_topic(name: str) -> str:
    """The command topic of the service a Dispatch targets."""
    commands = SERVICES[name].commands
    if commands is None:
        raise LookupError(f"service {name} takes no commands from others")
    return commands


def answer_topic(name: str) -> str:
    """Where the answers to the commands service `name` dispatched go."""
    answers = SERVICES[name].answers
    if answers is None:
        raise LookupError(f"service {name} wants no answers")
    return answers[0]
