"""The registry of contexts (models/contexts.py) is complete and lists each thing once.

Upcasting, the contracts and the topics are built from it, so an event model left
out of it could be neither read nor documented, and one listed twice would be
read by whichever context came last.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections import Counter
from collections.abc import Iterator

from pydantic import BaseModel

import models
from domain.topology import TOPOLOGY
from models import contracts, upcasting
from models.contexts import ANSWER_TOPICS, COMMAND_TOPICS, CONTEXTS, EVENT_TOPICS


def declared(marker: str) -> Iterator[type[BaseModel]]:
    """Every model in models/ that declares `marker` (`event_type`, `command_type`)
    itself; a subclass that inherits it (an HTTP body extending its command) is not
    another event or command."""
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"models.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
                and marker in vars(value)
            ):
                yield value


def twice(names: list[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)


def test_each_context_and_each_topic_is_listed_once() -> None:
    assert twice([context.name for context in CONTEXTS]) == []
    assert twice([*EVENT_TOPICS, *COMMAND_TOPICS, *ANSWER_TOPICS]) == []


def test_each_event_and_command_type_belongs_to_one_context() -> None:
    assert twice([event_type for c in CONTEXTS for event_type in c.events]) == []
    assert twice([command_type for c in CONTEXTS for command_type in c.commands]) == []


def test_each_registry_is_keyed_by_its_models_own_type() -> None:
    for context in CONTEXTS:
        for event_type, model in context.events.items():
            assert model.event_type == event_type, context.name  # type: ignore[attr-defined]
        for command_type, model in context.commands.items():
            assert model.command_type == command_type, context.name  # type: ignore[attr-defined]


def test_every_event_model_is_in_exactly_one_context() -> None:
    """Current versions in a context's `events`, earlier ones in its `history`."""
    missing, repeated = [], []
    for model in declared("event_type"):
        homes = [c.name for c in CONTEXTS if model in (*c.events.values(), *c.history)]
        if not homes:
            missing.append(f"{model.__module__}.{model.__qualname__}")
        elif len(homes) > 1:
            repeated.append(f"{model.__qualname__} in {', '.join(homes)}")
    assert missing == [], "add them to models/contexts.py"
    assert repeated == []


def test_every_command_model_is_in_exactly_one_context() -> None:
    missing, repeated = [], []
    for model in declared("command_type"):
        homes = [c.name for c in CONTEXTS if model in c.commands.values()]
        if not homes:
            missing.append(f"{model.__module__}.{model.__qualname__}")
        elif len(homes) > 1:
            repeated.append(f"{model.__qualname__} in {', '.join(homes)}")
    assert missing == [], "add them to models/contexts.py"
    assert repeated == []


def test_history_and_upcasters_lead_to_the_current_version() -> None:
    """Each earlier version is older than its context's current one, and every version
    below the current one has an upcaster to the next, in the same context."""
    for context in CONTEXTS:
        for model in context.history:
            current = context.events[model.event_type]  # type: ignore[attr-defined]
            assert model.schema_version < current.schema_version  # type: ignore[attr-defined]
        for event_type, version in context.upcasters:
            assert event_type in context.events, context.name
            assert 1 <= version < context.events[event_type].schema_version  # type: ignore[attr-defined]
        for event_type, model in context.events.items():
            steps = range(1, model.schema_version)  # type: ignore[attr-defined]
            assert all((event_type, v) in context.upcasters for v in steps), event_type


def test_upcasting_and_the_contracts_read_every_context() -> None:
    assert len(upcasting.EVENT_MODELS) == sum(len(c.events) for c in CONTEXTS)
    assert len(upcasting.UPCASTERS) == sum(len(c.upcasters) for c in CONTEXTS)
    generated = contracts.generate()["contexts"]
    assert list(generated) == [c.name for c in CONTEXTS]
    assert [entry["topic"] for entry in generated.values()] == list(EVENT_TOPICS)


def test_the_topology_uses_the_contexts_topics() -> None:
    """domain/topology.py names its topics itself: they are the same ones, each
    service on one context's event, command and answer topics."""
    by_event_topic = {context.event_topic: context for context in CONTEXTS}
    assert sorted(spec.events for spec in TOPOLOGY) == sorted(EVENT_TOPICS)
    for spec in TOPOLOGY:
        context = by_event_topic[spec.events]
        assert spec.commands == context.command_topic, spec.name
        assert (spec.answers[0] if spec.answers else None) == context.answer_topic, spec.name
        assert set(spec.reacts_to) <= set(EVENT_TOPICS), spec.name
