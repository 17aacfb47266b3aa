"""Event contracts: the doc matches the models, and a schema never changes under a version.

`python -m models.contracts --check` runs the same check; this test keeps it in CI.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from models import contracts
from models.base import Strict
from models.money import Money
from models.orders import OrderPlaced
from models.orders_history import OrderPlacedV1, OrderPlacedV2


class OrderPaidChanged(Strict):
    """OrderPaid with a new field but the same schema_version: must be caught."""

    event_type: ClassVar[str] = "OrderPaid"
    schema_version: ClassVar[int] = 1
    amount: Money
    method: str


class OrderPaidV2(OrderPaidChanged):
    """The same change done right: a new version."""

    schema_version: ClassVar[int] = 2


class OrderPaidRetyped(Strict):
    event_type: ClassVar[str] = "OrderPaid"
    schema_version: ClassVar[int] = 1
    amount: int


class OrderPaidDocumented(Strict):
    """Only the description differs from OrderPaid v1: not a contract change."""

    event_type: ClassVar[str] = "OrderPaid"
    schema_version: ClassVar[int] = 1
    amount: Money


def models_with(model: type[BaseModel]) -> contracts.Models:
    models = contracts.event_models()
    models["orders"][model.event_type] = {model.schema_version: model}  # type: ignore[attr-defined]
    return models


def recorded() -> contracts.Contracts:
    doc = contracts.load()
    assert doc is not None, "docs/contracts.json is missing: python -m models.contracts --write"
    return doc


def test_the_doc_matches_the_models() -> None:
    assert contracts.check() == [], "run: python -m models.contracts --write"


def test_the_command_line_check_passes() -> None:
    assert contracts.main(["--check"]) == 0


def test_order_placed_keeps_every_version() -> None:
    generated = contracts.generate()
    context, event = contracts.find(generated, "OrderPlaced") or ("", {})
    assert context == "orders" and event["current_version"] == 3
    fields = {v: set(s["properties"]) for v, s in event["versions"].items()}
    assert fields["1"] == {"customer_id", "lines", "total"}
    assert fields["2"] == fields["1"] | {"discount"}
    assert fields["3"] == fields["2"] | {"shipping_address"}
    assert OrderPlaced.schema_version == 3
    assert (OrderPlacedV1.schema_version, OrderPlacedV2.schema_version) == (1, 2)


def test_historical_models_read_old_payloads() -> None:
    line = {"sku": "s1", "quantity": 2, "unit_price": "5.00"}
    v1 = OrderPlacedV1.model_validate({"customer_id": "c", "lines": [line], "total": "10.00"})
    v2 = OrderPlacedV2.model_validate({**v1.model_dump(mode="json"), "discount": "1.00"})
    assert v2.discount == Decimal("1.00")


def test_a_changed_schema_without_a_version_bump_is_caught() -> None:
    problems = contracts.problems(recorded(), contracts.generate(models_with(OrderPaidChanged)))
    assert any("OrderPaid v1: the schema changed" in p for p in problems), problems


def test_a_retyped_field_is_caught() -> None:
    problems = contracts.problems(recorded(), contracts.generate(models_with(OrderPaidRetyped)))
    assert any("OrderPaid v1: the schema changed" in p for p in problems), problems


def test_check_fails_on_a_changed_model(tmp_path: Path) -> None:
    assert contracts.write(tmp_path) == []
    assert contracts.check(tmp_path) == []
    assert contracts.check(tmp_path, models_with(OrderPaidChanged)) != []


def test_write_refuses_an_unversioned_change(tmp_path: Path) -> None:
    assert contracts.write(tmp_path) == []
    before = (tmp_path / "contracts.json").read_text()
    refused = contracts.write(tmp_path, models_with(OrderPaidChanged))
    assert refused and "OrderPaid v1" in refused[0]
    assert (tmp_path / "contracts.json").read_text() == before


def test_a_new_version_is_accepted_and_the_old_one_kept(tmp_path: Path) -> None:
    assert contracts.write(tmp_path) == []
    models = models_with(OrderPaidV2)  # v1's model is gone: only the doc remembers it
    problems = contracts.check(tmp_path, models)
    assert problems and all("not recorded" in p for p in problems), problems
    assert contracts.write(tmp_path, models) == []
    assert contracts.check(tmp_path, models) == []
    doc = json.loads((tmp_path / "contracts.json").read_text())
    _, paid = contracts.find(doc, "OrderPaid") or ("", {})
    assert paid["current_version"] == 2
    assert set(paid["versions"]) == {"1", "2"}
    assert "method" not in paid["versions"]["1"]["properties"]
    assert "method" in paid["versions"]["2"]["properties"]
    assert "OrderPaid" in (tmp_path / "CONTRACTS.md").read_text()


def test_a_version_going_down_is_caught(tmp_path: Path) -> None:
    assert contracts.write(tmp_path, models_with(OrderPaidV2)) == []
    problems = contracts.check(tmp_path)  # back to v1 only
    assert any("versions only go up" in p for p in problems), problems


def test_descriptions_and_titles_are_not_contract_changes() -> None:
    problems = contracts.unversioned_changes(
        recorded(), contracts.generate(models_with(OrderPaidDocumented))
    )
    assert problems == []


def test_a_stale_markdown_is_caught(tmp_path: Path) -> None:
    assert contracts.write(tmp_path) == []
    (tmp_path / "CONTRACTS.md").write_text("edited by hand\n")
    assert any("CONTRACTS.md is out of date" in p for p in contracts.check(tmp_path))
