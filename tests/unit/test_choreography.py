"""The whole saga in memory: the deciders and policies wired as the agents wire them.

A tiny bus stands in for Kafka: events go to the services that react to them,
dispatched commands to their aggregates, and answers back to who asked.
Redelivering everything twice must change nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain import saga
from domain.accounts import ACCOUNTS
from domain.decider import Decider
from domain.inventory import RESERVATIONS, STOCKS
from domain.orders import ORDERS
from domain.payments import PAYMENTS
from domain.shipping import SHIPMENTS
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope

NOW = datetime(2026, 11, 28, tzinfo=UTC)
DECIDERS: dict[str, Decider[Any, Any, Any]] = {
    "accounts": ACCOUNTS,
    "orders": ORDERS,
    "payments": PAYMENTS,
    "inventory": STOCKS,
    "reservations": RESERVATIONS,
    "shipping": SHIPMENTS,
}
REACTIONS = {  # which service reacts to which aggregate's events, and how
    "order": [
        ("payments", saga.payments_inbound),
        ("reservations", saga.reservations_inbound),
        ("shipping", saga.shipping_inbound),
    ],
    "payment": [("orders", saga.orders_inbound)],
    "reservation": [("orders", saga.orders_inbound)],
    "shipment": [("orders", saga.orders_inbound)],
}
OUTBOUND = {"payments": saga.payments_outbound, "reservations": saga.reservations_outbound}
ANSWERS = {"payments": saga.payments_answer, "reservations": saga.reservations_answer}


@dataclass
class Shop:
    redeliver: int = 1
    states: dict[tuple[str, str], Any] = field(default_factory=dict)
    results: dict[tuple[str, str], CommandResult] = field(default_factory=dict)
    log: list[EventEnvelope] = field(default_factory=list)
    queue: deque[tuple[str, Any]] = field(default_factory=deque)

    def apply(self, service: str, command: CommandEnvelope) -> CommandResult:
        key = (service, command.aggregate_id)
        done = self.results.get((service, command.command_id))
        if done is not None:  # idempotency, as the CommandHandler does
            return done
        decider = DECIDERS[service]
        state = self.states.get(key) or decider.initial_state(command.aggregate_id)
        result, self.states[key] = decider.execute(command, state, NOW)
        self.results[(service, command.command_id)] = result
        self.log += result.events
        for event in result.events:
            for _ in range(self.redeliver):
                self.queue.append(("event", event))
            for dispatch in OUTBOUND.get(service, lambda e: [])(event):
                self.queue.append(("dispatch", (service, dispatch)))
        return result

    def run(self) -> None:
        while self.queue:
            kind, item = self.queue.popleft()
            if kind == "event":
                for service, inbound in REACTIONS.get(item.aggregate_type, []):
                    reaction = inbound(item)
                    if reaction is not None:
                        self.apply(service, reaction)
            else:
                asker, dispatch = item
                target = "accounts" if dispatch.target == "accounts" else "inventory"
                result = self.apply(target, dispatch.command)
                if dispatch.reply is not None:
                    for _ in range(self.redeliver):
                        answer = ANSWERS[dispatch.reply](result)
                        if answer is not None:
                            self.apply(asker, answer)

    def tell(self, service: str, aggregate_id: str, command_type: str, **payload: Any) -> Any:
        command = CommandEnvelope(
            command_id=f"{service}-{aggregate_id}-{command_type}-{len(self.results)}",
            command_type=command_type,
            aggregate_id=aggregate_id,
            payload=payload,
            correlation_id=aggregate_id,
        )
        result = self.apply(service, command)
        self.run()
        return result

    def state(self, service: str, aggregate_id: str) -> Any:
        return self.states[(service, aggregate_id)]


def open_shop(redeliver: int = 1) -> Shop:
    shop = Shop(redeliver=redeliver)
    shop.tell("accounts", "ann", "OpenAccount", owner="Ann")
    shop.tell("accounts", "ann", "DepositMoney", amount="100.00")
    shop.tell("inventory", "A", "AddStock", quantity=5)
    shop.tell("inventory", "B", "AddStock", quantity=1)
    return shop


def place(shop: Shop, order_id: str, *lines: tuple[str, int, str]) -> None:
    shop.tell(
        "orders",
        order_id,
        "PlaceOrder",
        customer_id="ann",
        lines=[{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines],
    )


def test_a_paid_and_stocked_order_ships_and_is_charged_once() -> None:
    for redeliver in (1, 2):
        shop = open_shop(redeliver)
        place(shop, "o1", ("A", 2, "10.00"))
        assert shop.state("orders", "o1").status == "shipped"
        assert shop.state("accounts", "ann").balance == Decimal("80.00")
        stock = shop.state("inventory", "A")
        assert (stock.on_hand, stock.reserved) == (3, 0)


def test_an_order_short_of_stock_is_cancelled_refunded_and_released() -> None:
    shop = open_shop(redeliver=2)
    place(shop, "o2", ("A", 1, "10.00"), ("B", 2, "5.00"))
    order = shop.state("orders", "o2")
    assert (order.status, order.cancel_reason) == ("cancelled", "out_of_stock")
    assert shop.state("accounts", "ann").balance == Decimal("100.00")
    assert shop.state("inventory", "A").available == 5
    assert shop.state("inventory", "B").available == 1
    assert shop.state("payments", "o2").status == "refunded"


def test_a_declined_payment_cancels_the_order_and_touches_no_stock() -> None:
    shop = open_shop()
    place(shop, "o3", ("A", 1, "500.00"))
    order = shop.state("orders", "o3")
    assert (order.status, order.cancel_detail) == ("cancelled", "insufficient_funds")
    assert ("reservations", "o3") in shop.states
    assert shop.state("inventory", "A").reserved == 0


def test_every_command_and_event_id_is_caused_by_an_earlier_step() -> None:
    shop = open_shop(redeliver=2)
    place(shop, "o4", ("A", 1, "1.00"))
    ids = {str(e.event_id) for e in shop.log}
    for event in shop.log:
        if event.correlation_id == "o4" and event.event_type != "OrderPlaced":
            assert event.causation_id in ids, event.event_type
    assert len(ids) == len(shop.log)  # redelivery produced no new event
