"""`Strict.evolved` is `model_copy(update=...)` for every state a decider folds.

The folds call it once per event (models/base.py says why it is not model_copy);
it relies on Strict models having no extra fields and no private attributes, which
this checks for every model in models/.
"""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime
from typing import Any

import pytest

import models
from domain.accounts import ACCOUNTS
from domain.decider import Decider
from domain.inventory import RESERVATIONS, STOCKS
from domain.orders import ORDERS
from domain.payments import PAYMENTS
from domain.shipping import SHIPMENTS
from models.base import Strict

DECIDERS: list[Decider[Any, Any, Any]] = [
    ACCOUNTS,
    ORDERS,
    PAYMENTS,
    SHIPMENTS,
    STOCKS,
    RESERVATIONS,
]


def strict_models() -> list[type[Strict]]:
    found = []
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"models.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Strict) and value is not Strict:
                found.append(value)
    return found


def test_no_strict_model_has_private_attributes_or_extra_fields() -> None:
    assert len(strict_models()) > 20
    for model in strict_models():
        assert not model.__private_attributes__, model
        assert model.model_config.get("extra") == "forbid", model


@pytest.mark.parametrize("decider", DECIDERS, ids=lambda d: d.aggregate_type)
def test_evolved_is_model_copy(decider: Decider[Any, Any, Any]) -> None:
    state = decider.initial_state("agg-1")
    changes = {"version": 7}
    if "updated_at" in type(state).model_fields:
        changes["updated_at"] = datetime(2026, 1, 2, tzinfo=UTC)  # type: ignore[assignment]
    fast, slow = state.evolved(**changes), state.model_copy(update=changes)
    assert type(fast) is type(slow)
    assert fast == slow
    assert fast.__dict__ == slow.__dict__
    assert fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
    assert fast.__pydantic_extra__ is None and slow.__pydantic_extra__ is None
    assert fast.__pydantic_private__ is None and slow.__pydantic_private__ is None
    assert fast.model_dump_json() == slow.model_dump_json()
    assert state.version == 0  # the original is untouched
    with pytest.raises(ValueError):  # still frozen
        fast.version = 8
