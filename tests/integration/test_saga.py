"""The order saga end to end against the real broker, with one real worker.

Every path of the choreography (paid, reserved, shipped; declined; out of
stock with compensation; cancelled by the client) ends in a final state in
which money and stock add up, and the read models and the timeline say so.
The saga is asynchronous: every check polls with a bound, none times anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.integration.saga_helpers import (
    FINAL,
    add_stock,
    balance,
    eventually,
    open_account,
    order_body,
    place,
    settled,
    stock_of,
    wait_balance,
    wait_for_status,
    wait_stock,
)
from tests.system import Worker

pytestmark = pytest.mark.integration

SAGA_SERVICES = {"orders", "payments", "inventory", "shipping"}


@pytest.fixture(scope="module")
def api(worker: Worker) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=worker.url, timeout=30.0) as client:
        yield client


def account_events(api: httpx.Client, account_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/accounts/{account_id}/events")
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


# --- the happy path ------------------------------------------------------------------------


def test_happy_path_ships_completes_charges_and_records_every_step(api: httpx.Client) -> None:
    open_account(api, "happy", "100.00")
    add_stock(api, "H-MUG", 10)
    add_stock(api, "H-TEA", 4)
    placed = place(
        api, "happy", ("H-MUG", 2, "12.50"), ("H-TEA", 3, "4.10"), order_id="happy-1",
        discount="5.30",
    )
    assert placed["order_id"] == "happy-1" and placed["order_status"] == "pending"
    assert placed["version"] == 1

    order = wait_for_status(api, "happy-1", ["shipped"])
    assert order["total"] == "32.00"  # 2 * 12.50 + 3 * 4.10 - 5.30
    assert order["discount"] == "5.30" and order["customer_id"] == "happy"
    assert order["shipment_id"]
    assert order["version"] == 4  # placed, paid, reserved, shipped

    completed = api.post("/orders/happy-1/complete")
    assert completed.status_code == 202, completed.text
    assert completed.json()["version"] == 5
    order = wait_for_status(api, "happy-1", ["completed"])
    # the read model answers at least the version the command produced
    at_least = api.get("/orders/happy-1", params={"min_version": 5})
    assert at_least.status_code == 200 and at_least.json()["status"] == "completed"

    wait_balance(api, "happy", Decimal("100.00") - Decimal("32.00"))
    mug = wait_stock(api, "H-MUG", on_hand=8, reserved=0)
    tea = wait_stock(api, "H-TEA", on_hand=1, reserved=0)
    assert (mug["available"], tea["available"]) == (8, 1)

    # the saga's timeline: every step with its service, each caused by an earlier step
    # (or, for the first and the client's complete, by the client's command)
    def full_timeline() -> list[dict[str, Any]] | None:
        response = api.get("/orders/happy-1/timeline")
        if response.status_code != 200:
            return None
        steps = response.json()["steps"]
        types = {s["event_type"] for s in steps}
        return steps if {"OrderCompleted", "ReservationCommitted"} <= types else None

    steps = eventually(full_timeline)
    kinds = [(s["service"], s["event_type"]) for s in steps]
    assert {s["service"] for s in steps} == SAGA_SERVICES, kinds
    assert kinds[0] == ("orders", "OrderPlaced")
    in_order = [
        ("orders", "OrderPlaced"),
        ("payments", "PaymentRequested"),
        ("payments", "PaymentCaptured"),
        ("orders", "OrderPaid"),
        ("inventory", "ReservationStarted"),
        ("inventory", "InventoryReserved"),
        ("orders", "OrderReserved"),
        ("shipping", "ShipmentCreated"),
        ("orders", "OrderShipped"),
        ("inventory", "ReservationCommitted"),
        ("orders", "OrderCompleted"),
    ]
    positions = [kinds.index(step) for step in in_order]  # ValueError names a missing step
    # the chain up to the shipment is one causal line; after it the reservation's commit
    # (caused by OrderShipped) and the client's complete race each other
    assert positions[:-2] == sorted(positions[:-2]), kinds
    assert positions[-3] < positions[-2] and positions[-3] < positions[-1], kinds
    commands = {placed["command_id"], completed.json()["command_id"]}
    earlier: set[str] = set()
    for step in steps:
        assert step["caused_by"] in earlier | commands, (step, kinds)
        earlier.add(step["event_id"])
    assert len(earlier) == len(steps)  # no step recorded twice
    assert steps[0]["caused_by"] == placed["command_id"]
    completion = steps[kinds.index(("orders", "OrderCompleted"))]
    assert completion["caused_by"] == completed.json()["command_id"]

    # the account's own stream shows the payment, tied to the order
    history = account_events(api, "happy")
    withdrawals = [e for e in history if e["event_type"] == "MoneyWithdrawn"]
    assert len(withdrawals) == 1
    payment = withdrawals[0]
    assert payment["correlation_id"] == "happy-1"
    assert payment["payload"]["amount"] == "32.00"
    assert payment["payload"]["reference"] == "payment:happy-1"
    assert [e["aggregate_version"] for e in history] == list(range(1, len(history) + 1))


# --- declined payments ---------------------------------------------------------------------


def test_declined_payment_cancels_without_touching_stock(api: httpx.Client) -> None:
    open_account(api, "poor", "5.00")
    added = add_stock(api, "D-PEN", 3)
    place(api, "poor", ("D-PEN", 1, "9.99"), order_id="poor-1")
    place(api, "nobody-at-all", ("D-PEN", 1, "1.00"), order_id="ghost-1")

    poor = wait_for_status(api, "poor-1")
    ghost = wait_for_status(api, "ghost-1")
    assert (poor["status"], poor["cancel_reason"]) == ("cancelled", "payment_declined")
    assert poor["cancel_detail"] == "insufficient_funds"
    assert (ghost["status"], ghost["cancel_reason"]) == ("cancelled", "payment_declined")
    assert ghost["cancel_detail"] == "not_found"

    assert settled(lambda: balance(api, "poor")) == Decimal("5.00")
    assert [e["event_type"] for e in account_events(api, "poor")] == [
        "AccountOpened",
        "MoneyDeposited",
    ]
    assert api.get("/accounts/nobody-at-all").status_code == 404  # not created by the saga
    pen = settled(lambda: stock_of(api, "D-PEN"))
    assert (pen["on_hand"], pen["reserved"], pen["available"]) == (3, 0, 3)
    assert pen["version"] == added["version"]  # no stock event at all


# --- out of stock: compensation --------------------------------------------------------------


def test_out_of_stock_on_one_line_refunds_and_releases_the_others(api: httpx.Client) -> None:
    open_account(api, "short", "100.00")
    for sku, quantity in (("S-BOOK", 5), ("S-LAMP", 2), ("S-RARE", 1)):
        add_stock(api, sku, quantity)
    place(
        api,
        "short",
        ("S-BOOK", 2, "10.00"),
        ("S-LAMP", 2, "7.25"),
        ("S-RARE", 2, "15.00"),
        order_id="short-1",
    )
    order = wait_for_status(api, "short-1")
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "out_of_stock")
    assert "S-RARE" in order["cancel_detail"]
    assert "S-BOOK" not in order["cancel_detail"] and "S-LAMP" not in order["cancel_detail"]

    # refunded exactly: one withdrawal and one deposit of the same amount
    wait_balance(api, "short", Decimal("100.00"))
    history = eventually(
        lambda: (h := account_events(api, "short"))[-1]["event_type"] == "MoneyDeposited"
        and len(h) == 4
        and h
    )
    withdrawn, refunded = history[2], history[3]
    assert withdrawn["event_type"] == "MoneyWithdrawn"
    assert withdrawn["payload"]["amount"] == refunded["payload"]["amount"] == "64.50"
    assert refunded["payload"]["reference"] == "refund:short-1"
    assert refunded["correlation_id"] == withdrawn["correlation_id"] == "short-1"

    # every line reserved before the shortfall is released: available restored
    for sku, on_hand in (("S-BOOK", 5), ("S-LAMP", 2), ("S-RARE", 1)):
        row = wait_stock(api, sku, on_hand=on_hand, reserved=0)
        assert row["available"] == on_hand
    final = settled(lambda: [stock_of(api, s)["reserved"] for s in ("S-BOOK", "S-LAMP")])
    assert final == [0, 0]
    assert wait_for_status(api, "short-1")["version"] == order["version"]  # stays cancelled


# --- the client cancels -----------------------------------------------------------------------


def test_cancel_right_after_placing_ends_consistent_either_way(api: httpx.Client) -> None:
    open_account(api, "quick", "50.00")
    add_stock(api, "C-HAT", 4)
    place(api, "quick", ("C-HAT", 1, "20.00"), order_id="quick-1")
    cancelled = api.post("/orders/quick-1/cancel", json={"reason": "changed_mind"})
    assert cancelled.status_code in (202, 409), cancelled.text
    order = wait_for_status(api, "quick-1")
    if cancelled.status_code == 202:
        assert (order["status"], order["cancel_reason"]) == ("cancelled", "changed_mind")
        wait_balance(api, "quick", Decimal("50.00"))
        wait_stock(api, "C-HAT", on_hand=4, reserved=0)
        # whatever had been taken was given back, once
        history = settled(lambda: account_events(api, "quick"))
        taken = [e for e in history if e["event_type"] == "MoneyWithdrawn"]
        given = [e for e in history if e["payload"].get("reference") == "refund:quick-1"]
        assert len(taken) == len(given) <= 1
    else:  # the saga was faster than the client: it had shipped already
        assert cancelled.json()["error"] == "invalid_transition"
        assert order["status"] == "shipped"
        wait_balance(api, "quick", Decimal("30.00"))
        wait_stock(api, "C-HAT", on_hand=3, reserved=0)
    # the final state does not move afterwards
    assert wait_for_status(api, "quick-1")["status"] == order["status"]


def test_cancel_and_complete_in_the_wrong_state_are_refused_with_a_reason(
    api: httpx.Client,
) -> None:
    open_account(api, "wrong", "100.00")
    add_stock(api, "W-CUP", 5)
    place(api, "wrong", ("W-CUP", 1, "3.00"), order_id="wrong-shipped")
    place(api, "wrong-broke", ("W-CUP", 1, "3.00"), order_id="wrong-cancelled")
    assert wait_for_status(api, "wrong-shipped")["status"] == "shipped"
    assert wait_for_status(api, "wrong-cancelled")["status"] == "cancelled"

    refused = api.post("/orders/wrong-shipped/cancel")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error"] == "invalid_transition"
    assert body["reason"] == "cannot cancel an order that is shipped"
    assert body["details"]["status"] == "shipped"

    refused = api.post("/orders/wrong-cancelled/complete")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "invalid_transition"
    assert refused.json()["reason"] == "cannot complete an order that is cancelled"

    assert api.post("/orders/wrong-shipped/complete").status_code == 202
    wait_for_status(api, "wrong-shipped", ["completed"])
    again = api.post("/orders/wrong-shipped/complete")
    assert again.status_code == 409 and "completed" in again.json()["reason"]
    again = api.post("/orders/wrong-shipped/cancel")
    assert again.status_code == 409 and "completed" in again.json()["reason"]

    missing = api.post("/orders/never-placed/cancel")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    duplicate = api.post("/orders", json=order_body("wrong", ("W-CUP", 1, "3.00"),
                                                    order_id="wrong-shipped"))
    assert duplicate.status_code == 409 and duplicate.json()["error"] == "already_exists"
    # refusals change nothing
    assert wait_for_status(api, "wrong-shipped", ["completed"])["version"] == 5
    assert wait_for_status(api, "wrong-cancelled")["cancel_reason"] == "payment_declined"


ONE = {"sku": "V-X", "quantity": 1, "unit_price": "1.00"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [ONE, ONE]}, "lines"),
        ({"lines": [{**ONE, "quantity": 0}]}, "lines.0.quantity"),
        ({"lines": [{**ONE, "unit_price": "0"}]}, "lines.0.unit_price"),
        ({"lines": [{**ONE, "unit_price": 1.5}]}, "lines.0.unit_price"),
        ({"lines": [{**ONE, "sku": f"V-{n}"} for n in range(51)]}, "lines"),
        ({"lines": [ONE], "discount": "1.00"}, "discount"),
        ({"lines": [ONE], "discount": "2.00"}, "discount"),
    ],
    ids=[
        "no-lines",
        "duplicate-sku",
        "quantity-0",
        "price-0",
        "float-price",
        "51-lines",
        "discount-equal-subtotal",
        "discount-above-subtotal",
    ],
)
def test_invalid_orders_are_refused_naming_the_field(
    api: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = api.post("/orders", json={"customer_id": "validator", **body})
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "invalid_request"
    named = {f["field"]: f["reason"] for f in answer["fields"]}
    if field == "discount":
        # a rule across fields (discount vs the lines' subtotal) is a model-level check:
        # pydantic places it at the body, so the field is named in the reason
        assert "discount" in named or "discount" in named.get("body", ""), answer
        assert "subtotal" in " ".join(named.values())
    else:
        assert field in named, answer
        assert field in answer["reason"]  # "invalid fields: <field>"


def test_refused_orders_never_reach_the_saga(api: httpx.Client) -> None:
    response = api.post(
        "/orders",
        json={"order_id": "never-valid", "customer_id": "validator", "lines": []},
    )
    assert response.status_code == 422
    assert api.get("/orders/never-valid").status_code == 404


# --- read models --------------------------------------------------------------------------------


def test_read_models_by_customer_and_by_status(api: httpx.Client) -> None:
    open_account(api, "reader", "0")  # too poor: every order is declined
    add_stock(api, "R-PEN", 10)
    ids = [f"reader-{n}" for n in range(7)]
    for order_id in ids:
        place(api, "reader", ("R-PEN", 1, "1.00"), order_id=order_id)
    for order_id in ids:
        assert wait_for_status(api, order_id)["status"] == "cancelled"

    # the per-customer view is fed through a repartition topic: it catches up shortly
    def all_listed() -> list[dict[str, Any]] | None:
        rows = api.get("/customers/reader/orders").json()["orders"]
        done = len(rows) == len(ids) and {r["status"] for r in rows} == {"cancelled"}
        return rows if done else None

    rows = eventually(all_listed)
    assert sorted(r["order_id"] for r in rows) == ids
    assert {r["customer_id"] for r in rows} == {"reader"}
    assert all(r["version"] == 2 for r in rows)  # placed, cancelled: nothing else
    assert api.get("/customers/someone-else/orders").json()["orders"] == []

    # by status: every one of them is listed once, across pages of 3
    def pages() -> list[str] | None:
        seen: list[str] = []
        after: str | None = None
        for _ in range(1000):
            params = {"status": "cancelled", "limit": "3", **({"after": after} if after else {})}
            response = api.get("/orders", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["orders"]) <= 3
            assert {r["status"] for r in page["orders"]} <= {"cancelled"}
            seen += [r["order_id"] for r in page["orders"]]
            after = page["next_after"]
            if after is None:
                break
        return seen if set(ids) <= set(seen) else None

    seen = eventually(pages)
    assert len(seen) == len(set(seen)), seen  # no duplicates across pages
    assert seen == sorted(seen)
    assert not any(o in seen for o in ("happy-1",))  # not cancelled: not listed
    pending_page = api.get("/orders", params={"status": "pending", "limit": "500"}).json()
    assert not set(ids) & {r["order_id"] for r in pending_page["orders"]}  # moved out
    assert api.get("/orders", params={"status": "lost"}).status_code == 422
    assert api.get("/orders", params={"status": "cancelled", "limit": "0"}).status_code == 422


# --- idempotency ----------------------------------------------------------------------------------


def test_the_same_idempotency_key_places_one_order(api: httpx.Client) -> None:
    open_account(api, "twice", "100.00")
    add_stock(api, "I-MUG", 5)
    body = order_body("twice", ("I-MUG", 1, "10.00"))
    headers = {"Idempotency-Key": "place-it-once"}
    first = api.post("/orders", json=body, headers=headers)
    second = api.post("/orders", json=body, headers=headers)
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    order_id = first.json()["order_id"]
    assert second.json()["order_id"] == order_id
    assert second.json()["command_id"] == first.json()["command_id"]
    assert second.json()["events"] == first.json()["events"]  # the recorded answer

    # the same key for a different request is refused, not silently applied
    other = api.post("/orders", json=order_body("twice", ("I-MUG", 2, "10.00")), headers=headers)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"

    assert wait_for_status(api, order_id)["status"] == "shipped"
    # a retry after the saga ran still names the same order, and changes nothing
    third = api.post("/orders", json=body, headers=headers)
    assert third.status_code == 202 and third.json()["order_id"] == order_id
    rows = eventually(
        lambda: (r := api.get("/customers/twice/orders").json()["orders"])
        and r[0]["status"] == "shipped"
        and r
    )
    assert [r["order_id"] for r in rows] == [order_id]
    wait_balance(api, "twice", Decimal("90.00"))
    wait_stock(api, "I-MUG", on_hand=4, reserved=0)
    assert settled(lambda: balance(api, "twice")) == Decimal("90.00")
    withdrawals = [e for e in account_events(api, "twice") if e["event_type"] == "MoneyWithdrawn"]
    assert len(withdrawals) == 1
    assert wait_for_status(api, order_id)["status"] in FINAL
