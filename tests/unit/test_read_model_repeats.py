"""A repeated event rewrites what it wrote: the local row can be ahead of its changelog.

After a SIGKILL a worker restarted on its own data dir can hold a row whose
changelog record was never sent; the redelivered event is the one chance to
send it, so the projections write the row (and its feeds) again instead of
skipping it. A table here is a dict that records every write, as the
changelog would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import app  # noqa: F401 - the App first: tables are declared on it
from domain.accounts import ACCOUNTS
from models.envelope import CommandEnvelope, EventEnvelope
from tables import orders
from tables.read_models import Gap, fold_into
from tests.unit.changelog import ChangelogDict

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def account_events() -> list[EventEnvelope]:
    state = ACCOUNTS.initial_state("acc-1")
    events: list[EventEnvelope] = []
    for n, (kind, payload) in enumerate(
        [("OpenAccount", {"owner": "Ann"}), ("DepositMoney", {"amount": "10.00"})]
    ):
        command = CommandEnvelope(
            command_id=f"c{n}",
            command_type=kind,
            aggregate_id="acc-1",
            payload=payload,
            correlation_id=f"c{n}",
        )
        result, state = ACCOUNTS.execute(command, state, NOW)
        events += result.events
    return events


def test_a_repeated_order_event_sends_its_feeds_again_and_removes_other_statuses() -> None:
    stored = {
        "order_id": "o-1",
        "customer_id": "acc-1",
        "status": "paid",
        "version": 2,
        "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "10.00"}],
        "total": "10.00",
    }
    by_id = ChangelogDict()
    dict.__setitem__(by_id, "o-1", orders.Order.model_validate(stored).model_dump(mode="json"))
    repeat = EventEnvelope.model_validate(
        {
            "event_id": "6f1c1c3e-3f6e-4a39-9d57-4b2b0c9a7e11",
            "event_type": "OrderPaid",
            "schema_version": 1,
            "aggregate_type": "order",
            "aggregate_id": "o-1",
            "aggregate_version": 2,
            "occurred_at": NOW.isoformat(),
            "correlation_id": "o-1",
            "causation_id": "pay-1",
            "payload": {"payment_id": "o-1", "amount": "10.00"},
        }
    )

    feeds = orders.project(repeat, {"orders": by_id})

    assert by_id.writes == ["o-1"]
    customer = [f for f in feeds if f.view == "customer"]
    assert [json.loads(f.value)["status"] for f in customer] == ["paid"]
    ops = {f.key: json.loads(f.value)["op"] for f in feeds if f.view == "status"}
    assert ops.pop("paid") == "add"
    assert set(ops.values()) == {"remove"} and "pending" in ops and "shipped" in ops


def test_an_event_past_the_next_version_is_a_gap_and_writes_nothing() -> None:
    table = ChangelogDict()
    opened, deposited = account_events()
    with pytest.raises(Gap) as gap:
        fold_into(table, ACCOUNTS, deposited)
    assert (gap.value.aggregate_id, gap.value.have, gap.value.got) == ("acc-1", 0, 2)
    assert table.writes == []
    assert fold_into(table, ACCOUNTS, opened) and fold_into(table, ACCOUNTS, deposited)


def status_message(op: str, status: str, version: int) -> bytes:
    row = {"op": op, "order_id": "o-1", "customer_id": "c", "status": status, "version": version}
    return json.dumps(row).encode()


def test_the_status_index_writes_its_row_or_tombstone_again_on_a_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = ChangelogDict()
    monkeypatch.setattr(orders, "orders_by_status", index)
    orders.index_by_status(status_message("add", "paid", 2))
    orders.index_by_status(status_message("remove", "paid", 3))
    assert index.writes == ["paid/o-1", "-paid/o-1"]
    index.writes.clear()

    orders.index_by_status(status_message("add", "paid", 2))  # the add again: older
    orders.index_by_status(status_message("remove", "paid", 3))  # the remove again

    assert "paid/o-1" not in index
    assert index.writes[-1] == "-paid/o-1"  # the tombstone is sent again


def test_the_customer_index_keeps_the_newer_row_and_writes_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = ChangelogDict()
    monkeypatch.setattr(orders, "customer_orders", index)
    newer = {"order_id": "o-1", "customer_id": "c", "status": "shipped", "version": 5}
    older = {**newer, "status": "paid", "version": 3}
    orders.index_by_customer(json.dumps(newer).encode())
    orders.index_by_customer(json.dumps(older).encode())
    assert index["c/o-1"]["version"] == 5
    assert index.writes == ["c/o-1", "c/o-1"]
