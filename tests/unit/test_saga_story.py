"""The whole choreography told as stories, in memory: no Kafka, only the pure parts.

A tiny driver stands in for the brokers and the agents; the wiring is the production
one (domain/topology.py). It keeps each aggregate's state
by (aggregate type, id) and runs commands through `Decider.execute`, records every
result (a repeated command id is answered from the record, as the command handler
does), routes each event to the services that react to it, each dispatched command to
the aggregate it addresses, and each answer back through the asker's answer policy.

Every message waits in a queue per consumer and key (a topic partition), so the
delivery order can be shuffled across aggregates while each aggregate's own messages
stay in order, and any message can be delivered twice.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain import saga
from domain.decider import Decider
from domain.shipping import shipment_id_for
from domain.topology import SERVICES as TOPOLOGY_BY_NAME
from domain.topology import TOPOLOGY, Inbound
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)

SERVICES: dict[str, Decider[Any, Any, Any]] = {spec.name: spec.decider for spec in TOPOLOGY}
AGGREGATE_OF_TOPIC = {spec.events: spec.decider.aggregate_type for spec in TOPOLOGY}
REACTS_TO: dict[str, list[tuple[str, Inbound]]] = {}
"""Aggregate type -> (service, policy) reacting to its events: the production topology."""
for _spec in TOPOLOGY:
    for _topic, _policy in _spec.reacts_to.items():
        REACTS_TO.setdefault(AGGREGATE_OF_TOPIC[_topic], []).append((_spec.name, _policy))

Message = tuple[int, str, Any]  # (sequence, kind, body)


@dataclass
class Shop:
    """The services of the shop and the queues between them."""

    copies: int = 1
    """How many times each event, command and answer is delivered."""
    rng: random.Random | None = None
    """Pick the next partition at random (seeded); None delivers in publication order."""
    states: dict[tuple[str, str], Any] = field(default_factory=dict)
    results: dict[tuple[str, str, str], CommandResult] = field(default_factory=dict)
    log: list[EventEnvelope] = field(default_factory=list)
    rejected: list[CommandResult] = field(default_factory=list)
    partitions: dict[tuple[str, ...], deque[Message]] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    client_commands: set[str] = field(default_factory=set)

    # --- the command side --------------------------------------------------------

    def apply(self, service: str, command: CommandEnvelope) -> CommandResult:
        decider = SERVICES[service]
        recorded = self.results.get((service, command.aggregate_id, command.command_id))
        if recorded is not None:
            result = recorded
        else:
            key = (decider.aggregate_type, command.aggregate_id)
            state = self.states.get(key) or decider.initial_state(command.aggregate_id)
            result, self.states[key] = decider.execute(command, state, NOW)
            self.results[(service, command.aggregate_id, command.command_id)] = result
            if result.outcome == "rejected":
                self.rejected.append(result)
            self.log += result.events
            for event in result.events:
                for reactor, _ in REACTS_TO.get(event.aggregate_type, []):
                    self._publish(("events", reactor, event.aggregate_id), "event", event)
        # as the Service does: the outbound step runs for a recorded result too
        for event in result.events:
            for dispatch in TOPOLOGY_BY_NAME[service].outbound(saga.fact_of(event)):
                target = dispatch.target
                body = (target, dispatch.command, dispatch.reply, service)
                self._publish(("commands", target, dispatch.command.aggregate_id), "command", body)
        return result

    def _publish(self, partition: tuple[str, ...], kind: str, body: Any) -> None:
        queue = self.partitions.setdefault(partition, deque())
        for _ in range(self.copies):
            queue.append((next(self._seq), kind, body))

    # --- delivery ---------------------------------------------------------------------

    def step(self) -> bool:
        """Deliver one message; False when nothing is left."""
        ready = [p for p, q in self.partitions.items() if q]
        if not ready:
            return False
        if self.rng is None:
            partition = min(ready, key=lambda p: self.partitions[p][0][0])
        else:
            partition = self.rng.choice(sorted(ready))
        _, kind, body = self.partitions[partition].popleft()
        if kind == "event":
            for reactor, inbound in REACTS_TO[body.aggregate_type]:
                if reactor == partition[1] and (command := inbound(saga.fact_of(body))) is not None:
                    self.apply(reactor, command)
        elif kind == "command":
            target, command, reply, asker = body
            result = self.apply(target, command)
            if reply is not None:
                self._publish(
                    ("answers", asker, result.correlation_id), "answer", (asker, reply, result)
                )
        else:
            asker, reply, result = body
            answers = TOPOLOGY_BY_NAME[reply].answers
            assert answers is not None, f"{reply} dispatched a command wanting an answer"
            if (command := answers[1](result)) is not None:
                self.apply(asker, command)
        return True

    def run(self, until: Callable[[], bool] = lambda: False, limit: int = 10_000) -> None:
        for _ in range(limit):
            if until() or not self.step():
                return
        raise AssertionError("the saga did not settle")

    # --- what a client does and sees ----------------------------------------------------

    def tell(
        self, service: str, aggregate_id: str, command_type: str, **payload: Any
    ) -> CommandResult:
        command_id = f"client-{len(self.client_commands)}"
        self.client_commands.add(command_id)
        command = CommandEnvelope(
            command_id=command_id,
            command_type=command_type,
            aggregate_id=aggregate_id,
            payload=payload,
            correlation_id=aggregate_id,
        )
        return self.apply(service, command)

    def state(self, aggregate_type: str, aggregate_id: str) -> Any:
        return self.states[(aggregate_type, aggregate_id)]

    def order(self, order_id: str) -> Any:
        return self.state("order", order_id)

    def payment(self, order_id: str) -> Any:
        return self.state("payment", order_id)

    def reservation(self, order_id: str) -> Any:
        return self.state("reservation", order_id)

    def balance(self, customer: str = "ann") -> Decimal:
        return Decimal(self.state("account", customer).balance)

    def stock(self, sku: str) -> tuple[int, int, int]:
        stock = self.state("stock", sku)
        return stock.on_hand, stock.reserved, stock.available

    def events_of(self, order_id: str) -> list[str]:
        return [e.event_type for e in self.log if e.correlation_id == order_id]


def open_shop(copies: int = 1, rng: random.Random | None = None, **stock: int) -> Shop:
    shop = Shop(copies=copies, rng=rng)
    shop.tell("accounts", "ann", "OpenAccount", owner="Ann")
    shop.tell("accounts", "ann", "DepositMoney", amount="100.00")
    for sku, quantity in (stock or {"A": 5, "B": 1}).items():
        shop.tell("stock", sku, "AddStock", quantity=quantity)
    shop.run()
    return shop


def place(shop: Shop, order_id: str, *lines: tuple[str, int, str], customer: str = "ann") -> None:
    result = shop.tell(
        "orders",
        order_id,
        "PlaceOrder",
        customer_id=customer,
        lines=[{"sku": sku, "quantity": q, "unit_price": price} for sku, q, price in lines],
        shipping_address={
            "name": "Ann",
            "street": "1 Main St",
            "city": "Springfield",
            "postal_code": "12345",
            "country": "US",
        },
    )
    assert result.outcome == "accepted", result.rejection


def assert_books_are_sound(shop: Shop) -> None:
    """What must hold after any story: gapless versions, unique ids, known causes, no oversell."""
    ids = [e.event_id for e in shop.log]
    assert len(set(ids)) == len(ids), "an event was recorded twice"
    by_aggregate: dict[tuple[str, str], list[int]] = {}
    for event in shop.log:
        by_aggregate.setdefault((event.aggregate_type, event.aggregate_id), []).append(
            event.aggregate_version
        )
    for key, versions in by_aggregate.items():
        assert versions == list(range(1, len(versions) + 1)), key
        assert shop.states[key].version == len(versions)
    known = {str(i) for i in ids} | shop.client_commands
    for event in shop.log:
        assert event.causation_id in known, (event.event_type, event.causation_id)
    for (aggregate_type, _), state in shop.states.items():
        if aggregate_type == "stock":
            assert state.reserved == sum(state.reservations.values())
            assert 0 <= state.available <= state.on_hand


def settled(shop: Shop) -> dict[tuple[str, str], Any]:
    """Every aggregate's final state, by type and id."""
    return dict(shop.states)


# --- the stories ---------------------------------------------------------------------------------


@pytest.mark.parametrize("copies", [1, 2])
def test_a_paid_and_stocked_order_ships_with_money_withdrawn_and_stock_committed(
    copies: int,
) -> None:
    shop = open_shop(copies)

    place(shop, "o1", ("A", 2, "10.00"), ("B", 1, "5.00"))
    shop.run()

    order = shop.order("o1")
    assert (order.status, order.total) == ("shipped", Decimal("25.00"))
    assert order.shipment_id == shipment_id_for("o1")
    assert shop.balance() == Decimal("75.00")
    assert shop.payment("o1").status == "captured"
    assert shop.reservation("o1").status == "committed"
    assert shop.stock("A") == (3, 0, 3)
    assert shop.stock("B") == (0, 0, 0)
    assert shop.state("shipment", "o1").status == "created"
    assert shop.events_of("o1")[0] == "OrderPlaced"
    assert {"PaymentCaptured", "InventoryReserved", "ShipmentCreated", "OrderShipped"} <= set(
        shop.events_of("o1")
    )
    assert shop.tell("orders", "o1", "CompleteOrder").outcome == "accepted"
    assert shop.order("o1").status == "completed"
    assert_books_are_sound(shop)


def test_a_declined_payment_cancels_the_order_and_touches_no_stock() -> None:
    shop = open_shop()

    place(shop, "o1", ("A", 1, "500.00"))
    shop.run()

    order = shop.order("o1")
    assert (order.status, order.cancel_reason, order.cancel_detail) == (
        "cancelled",
        "payment_declined",
        "insufficient_funds",
    )
    assert shop.payment("o1").status == "declined"
    assert shop.balance() == Decimal("100.00")
    assert shop.stock("A") == (5, 0, 5)
    assert not [e for e in shop.log if e.aggregate_type == "stock" and e.correlation_id == "o1"]
    assert (shop.reservation("o1").status, shop.reservation("o1").cancelled) == ("noted", True)
    assert shop.state("shipment", "o1").version == 0  # nothing to ship, nothing to cancel
    assert_books_are_sound(shop)


def test_an_order_for_a_customer_without_an_account_is_declined() -> None:
    shop = open_shop()

    place(shop, "o1", ("A", 1, "1.00"), customer="bob")
    shop.run()

    assert (shop.order("o1").status, shop.order("o1").cancel_detail) == ("cancelled", "not_found")
    assert_books_are_sound(shop)


@pytest.mark.parametrize("copies", [1, 2])
def test_one_line_out_of_stock_cancels_refunds_and_releases_the_other_line(copies: int) -> None:
    shop = open_shop(copies, A=5, B=1)
    before = (shop.balance(), shop.stock("A"), shop.stock("B"))

    place(shop, "o1", ("A", 2, "10.00"), ("B", 2, "5.00"))
    shop.run()

    order = shop.order("o1")
    assert (order.status, order.cancel_reason) == ("cancelled", "out_of_stock")
    assert order.cancel_detail == "B: insufficient_stock"
    assert shop.reservation("o1").status == "failed"
    assert shop.payment("o1").status == "refunded"
    assert (shop.balance(), shop.stock("A"), shop.stock("B")) == before  # exactly restored
    assert shop.events_of("o1").count("StockReleased") == 1
    assert shop.events_of("o1").count("MoneyWithdrawn") == 1
    assert shop.events_of("o1").count("MoneyDeposited") == 1
    assert_books_are_sound(shop)


def test_an_unknown_sku_cancels_the_order_just_the_same() -> None:
    shop = open_shop(A=5)

    place(shop, "o1", ("A", 1, "10.00"), ("Z", 1, "1.00"))
    shop.run()

    assert shop.order("o1").cancel_detail == "Z: not_found"
    assert (shop.balance(), shop.stock("A")) == (Decimal("100.00"), (5, 0, 5))
    assert_books_are_sound(shop)


@pytest.mark.parametrize("copies", [1, 2])
def test_a_customer_who_cancels_after_paying_is_refunded_and_the_stock_released(
    copies: int,
) -> None:
    shop = open_shop(copies)
    place(shop, "o1", ("A", 2, "10.00"), ("B", 1, "5.00"))
    shop.run(until=lambda: shop.order("o1").status == "paid")
    assert shop.balance() == Decimal("75.00")

    cancelled = shop.tell("orders", "o1", "CancelOrder", reason="customer_request")
    shop.run()

    assert cancelled.outcome == "accepted"
    order = shop.order("o1")
    assert (order.status, order.cancel_reason) == ("cancelled", "customer_request")
    assert shop.payment("o1").status == "refunded"
    assert shop.balance() == Decimal("100.00")
    assert shop.stock("A") == (5, 0, 5)
    assert shop.stock("B") == (1, 0, 1)
    assert shop.reservation("o1").status == "released"
    assert "OrderShipped" not in shop.events_of("o1")
    assert_books_are_sound(shop)


def test_a_customer_who_cancels_once_reserved_gets_the_shipment_cancelled_too() -> None:
    shop = open_shop()
    place(shop, "o1", ("A", 2, "10.00"))
    shop.run(until=lambda: shop.order("o1").status == "reserved")

    assert shop.tell("orders", "o1", "CancelOrder").outcome == "accepted"
    shop.run()

    assert shop.order("o1").status == "cancelled"
    assert shop.state("shipment", "o1").status == "cancelled"
    assert (shop.balance(), shop.stock("A")) == (Decimal("100.00"), (5, 0, 5))
    # the shipment created before the cancellation arrived was reported, and refused
    assert any(r.command_type == "MarkShipped" and r.outcome == "rejected" for r in shop.rejected)
    assert_books_are_sound(shop)


def test_a_cancellation_while_the_capture_is_in_flight_is_refunded_once_captured() -> None:
    shop = open_shop()
    place(shop, "o1", ("A", 1, "10.00"))
    shop.run(until=lambda: ("payment", "o1") in shop.states)
    assert shop.payment("o1").status == "requested"

    assert shop.tell("orders", "o1", "CancelOrder").outcome == "accepted"
    shop.run()

    payment_events = [e.event_type for e in shop.log if e.aggregate_type == "payment"]
    assert payment_events == [
        "PaymentRequested",
        "CancellationNoted",
        "PaymentCaptured",
        "RefundRequested",
        "PaymentRefunded",
    ]
    assert shop.order("o1").status == "cancelled"
    assert "OrderPaid" not in shop.events_of("o1")
    assert (shop.balance(), shop.stock("A")) == (Decimal("100.00"), (5, 0, 5))
    assert_books_are_sound(shop)


def test_a_shipped_order_cannot_be_cancelled() -> None:
    shop = open_shop()
    place(shop, "o1", ("A", 1, "10.00"))
    shop.run()

    refused = shop.tell("orders", "o1", "CancelOrder")

    assert refused.outcome == "rejected" and refused.rejection is not None
    assert refused.rejection.code == "invalid_transition"
    assert refused.rejection.details["status"] == "shipped"


# --- delivery that is late, repeated and out of order ---------------------------------------------


def _many_orders(shop: Shop) -> None:
    place(shop, "o1", ("A", 2, "10.00"), ("B", 1, "5.00"))
    place(shop, "o2", ("A", 2, "10.00"))
    place(shop, "o3", ("B", 1, "7.00"), ("A", 1, "3.00"))
    place(shop, "o4", ("A", 1, "90.00"))
    shop.tell("orders", "o2", "CancelOrder")


def test_redelivering_every_message_twice_changes_nothing() -> None:
    once, twice = open_shop(1), open_shop(2)

    for shop in (once, twice):
        _many_orders(shop)
        shop.run()
        assert_books_are_sound(shop)

    assert [e.model_dump() for e in twice.log] == [e.model_dump() for e in once.log]
    assert settled(twice) == settled(once)


def test_the_same_story_delivered_in_two_different_shuffles_ends_the_same_per_aggregate() -> None:
    endings = []
    for seed in (1, 2):
        shop = open_shop(2, random.Random(seed), A=10, B=10)
        place(shop, "o1", ("A", 2, "10.00"), ("B", 1, "5.00"))
        place(shop, "o2", ("B", 3, "1.00"))
        shop.run()
        assert_books_are_sound(shop)
        endings.append(
            ({k: v for k, v in shop.states.items() if k[0] != "account"}, shop.balance())
        )

    assert endings[0] == endings[1]


@pytest.mark.parametrize("seed", range(30))
def test_shuffled_and_repeated_delivery_never_oversells_nor_loses_money(seed: int) -> None:
    rng = random.Random(seed)
    shop = open_shop(copies=rng.choice([1, 2]), rng=rng, A=3, B=2)
    _many_orders(shop)
    for order_id in ("o1", "o3", "o4"):  # cancellations that race the saga
        shop.run(until=lambda: rng.random() < 0.05)
        if rng.random() < 0.3:
            shop.tell("orders", order_id, "CancelOrder")
    shop.run()

    assert_books_are_sound(shop)
    totals = {"o1": Decimal("25.00"), "o2": Decimal("20.00"), "o3": Decimal("10.00")}
    totals["o4"] = Decimal("90.00")
    shipped = [o for o in totals if shop.order(o).status == "shipped"]
    for order_id in totals:
        order, payment = shop.order(order_id), shop.payment(order_id)
        assert order.status in ("shipped", "cancelled"), (order_id, order.status)
        if order.status == "shipped":
            assert payment.status == "captured"
            assert shop.reservation(order_id).status == "committed"
        else:
            assert payment.status in ("declined", "refunded"), (order_id, payment.status)
            assert shop.reservation(order_id).status in ("noted", "failed", "released")
    # money: only what shipped was charged
    assert shop.balance() == Decimal("100.00") - sum((totals[o] for o in shipped), Decimal(0))
    # stock: nothing left held, only what shipped left the warehouse
    wanted = {"o1": {"A": 2, "B": 1}, "o2": {"A": 2}, "o3": {"B": 1, "A": 1}, "o4": {"A": 1}}
    for sku, start in (("A", 3), ("B", 2)):
        out = sum(wanted[o].get(sku, 0) for o in shipped)
        assert shop.stock(sku) == (start - out, 0, start - out), sku
