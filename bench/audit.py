"""The shop's invariants, checked against its event topics read straight from Kafka.

After a soak (or any run with faults) the log is the truth; this folds it with the
same deciders the workers use and checks what must hold whatever crashed: each
aggregate's versions are 1..n with no event twice, money and stock are conserved
across the saga, every order is final, every command a client saw accepted is in
the log, and each read model the workers serve equals the fold of its log.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.http_client import ApiClient, FinishedCommand, Unreachable
from bench.local_shop import read_values
from domain.accounts import ACCOUNTS
from domain.inventory import STOCKS
from domain.orders import ORDERS
from domain.payments import PAYMENTS
from models.accounts import Account
from models.contexts import EVENT_TOPICS
from models.envelope import EventEnvelope
from models.inventory import Stock
from models.orders import Order
from models.payments import Payment
from models.upcasting import decode_event

FINAL = frozenset({"shipped", "completed", "cancelled"})
SHIPPED = frozenset({"shipped", "completed"})
MOST_PROBLEMS_SHOWN = 20

Log = dict[str, list[EventEnvelope]]
"""Event topic (logical name) -> its events, in partition order."""


@dataclass
class Audit:
    """What was checked, what was found wrong, and what was counted on the way."""

    checks: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, holds: bool, problem: str) -> None:
        self.checks[name] += 1
        if not holds:
            self.problems.append(f"{name}: {problem}")

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        lines = [f"  {name}: {count} checked" for name, count in sorted(self.checks.items())]
        lines += [f"  {name}: {value}" for name, value in self.facts.items()]
        if self.problems:
            lines.append(f"  PROBLEMS ({len(self.problems)}):")
            lines += [f"    {p}" for p in self.problems[:MOST_PROBLEMS_SHOWN]]
        return "\n".join(lines)


async def read_log(bootstrap: str, prefix: str, partitions: int) -> Log:
    """Every event of every event topic, decoded (upcast) as the workers decode them."""
    return {
        topic: [
            decode_event(raw) for raw in await read_values(bootstrap, prefix + topic, partitions)
        ]
        for topic in EVENT_TOPICS
    }


def by_aggregate(events: Iterable[EventEnvelope]) -> dict[str, list[EventEnvelope]]:
    grouped: dict[str, list[EventEnvelope]] = defaultdict(list)
    for event in events:
        grouped[event.aggregate_id].append(event)
    return {key: sorted(found, key=lambda e: e.aggregate_version) for key, found in grouped.items()}


@dataclass
class Folded:
    """Every aggregate the log holds, folded with its decider."""

    accounts: dict[str, Account]
    stocks: dict[str, Stock]
    orders: dict[str, Order]
    payments: dict[str, Payment]


def fold(log: Log) -> Folded:
    def each(topic: str, decider: Any) -> dict[str, Any]:
        grouped = by_aggregate(log[topic])
        return {key: decider.replay(key, events) for key, events in grouped.items()}

    return Folded(
        accounts=each("accounts.events", ACCOUNTS),
        stocks=each("inventory.events", STOCKS),
        orders=each("orders.events", ORDERS),
        payments=each("payments.events", PAYMENTS),
    )


def audit_versions(log: Log, audit: Audit) -> None:
    """No event twice, and each aggregate's versions are exactly 1..n."""
    for topic, events in log.items():
        ids = Counter(e.event_id for e in events)
        twice = [str(event_id) for event_id, n in ids.items() if n > 1]
        audit.check("no event twice", not twice, f"{topic}: {twice[:3]}")
        for aggregate, mine in by_aggregate(events).items():
            versions = [e.aggregate_version for e in mine]
            audit.check(
                "versions 1..n",
                versions == list(range(1, len(versions) + 1)),
                f"{topic} {aggregate}: {versions[:20]}",
            )
    audit.facts["events"] = sum(len(events) for events in log.values())


def _references(events: Iterable[EventEnvelope], event_type: str, prefix: str) -> Counter[str]:
    return Counter(
        str(e.payload.get("reference"))[len(prefix) :]
        for e in events
        if e.event_type == event_type and str(e.payload.get("reference") or "").startswith(prefix)
    )


def _customers_own(events: Iterable[EventEnvelope], event_type: str, saga: str) -> Decimal:
    """The amounts of `event_type` the customers made themselves (not the saga's, whose
    references start with `saga`)."""
    return sum(
        (
            Decimal(e.payload["amount"])
            for e in events
            if e.event_type == event_type
            and not str(e.payload.get("reference") or "").startswith(saga)
        ),
        Decimal(0),
    )


def audit_money(log: Log, folded: Folded, audit: Audit) -> None:
    """Each shipped order charged its total once, each cancelled one nothing in the end,
    and all balances together = what clients put in - took out - paid for shipped orders."""
    events = log["accounts.events"]
    refunds = _references(events, "MoneyDeposited", "refund:")
    charges: Counter[str] = Counter()
    charged: dict[str, Decimal] = defaultdict(Decimal)
    for e in events:
        reference = str(e.payload.get("reference") or "")
        if e.event_type == "MoneyWithdrawn" and reference.startswith("payment:"):
            order_id = reference.removeprefix("payment:")
            charges[order_id] += 1
            charged[order_id] += Decimal(e.payload["amount"])
    for order_id, order in folded.orders.items():
        times, back = charges[order_id], refunds[order_id]
        audit.check(
            "charged at most once", times <= 1 and back <= 1, f"{order_id}: {times}, {back}"
        )
        if order.status in SHIPPED:
            audit.check(
                "a shipped order paid its total once",
                times == 1 and back == 0 and charged[order_id] == order.total,
                f"{order_id}: charged {times}x {charged[order_id]}, refunded {back}x, "
                f"total {order.total}",
            )
        elif order.status == "cancelled":
            payment = folded.payments.get(order_id)
            settled_by_hand = payment is not None and payment.status == "refund_failed"
            audit.check(
                "a cancelled order costs nothing",
                times == back or settled_by_hand,
                f"{order_id}: charged {times}x, refunded {back}x",
            )
    client_in = _customers_own(events, "MoneyDeposited", "refund:")
    client_out = _customers_own(events, "MoneyWithdrawn", "payment:")
    sold = sum((o.total for o in folded.orders.values() if o.status in SHIPPED), Decimal(0))
    owed = sum(
        (p.amount for p in folded.payments.values() if p.status == "refund_failed"), Decimal(0)
    )
    balances = sum((a.balance for a in folded.accounts.values()), Decimal(0))
    audit.check(
        "money conserved",
        balances == client_in - client_out - sold - owed,
        f"balances {balances} != in {client_in} - out {client_out} - sold {sold} - owed {owed}",
    )
    audit.facts["money: balances, sold"] = f"{balances}, {sold}"
    audit.facts["refunds owed (refund_failed)"] = str(owed)


def audit_stock(log: Log, folded: Folded, audit: Audit) -> None:
    """Per SKU: on hand = stocked - units of shipped orders, nothing left reserved."""
    shipped_units: Counter[str] = Counter()
    for order in folded.orders.values():
        if order.status in SHIPPED:
            for line in order.lines:
                shipped_units[line.sku] += line.quantity
    added: Counter[str] = Counter()
    for e in log["inventory.events"]:
        if e.event_type == "StockAdded":
            added[e.aggregate_id] += int(e.payload["quantity"])
    for sku, stock in folded.stocks.items():
        audit.check(
            "stock conserved",
            stock.on_hand == added[sku] - shipped_units[sku] and stock.reserved == 0,
            f"{sku}: on hand {stock.on_hand}, stocked {added[sku]}, shipped "
            f"{shipped_units[sku]}, reserved {stock.reserved} {dict(stock.reservations)}",
        )


def audit_orders_final(folded: Folded, audit: Audit) -> None:
    for order_id, order in folded.orders.items():
        audit.check("every order final", order.status in FINAL, f"{order_id}: {order.status}")
    statuses = Counter(str(o.status) for o in folded.orders.values())
    reasons = Counter(str(o.cancel_reason) for o in folded.orders.values() if o.cancel_reason)
    audit.facts["orders by status"] = dict(sorted(statuses.items()))
    audit.facts["cancelled by reason"] = dict(sorted(reasons.items()))


def audit_acknowledged(answered: Sequence[FinishedCommand], log: Log, audit: Audit) -> None:
    """Every command a client saw accepted (2xx) left its events in the log."""
    placed = {e.aggregate_id for e in log["orders.events"] if e.event_type == "OrderPlaced"}
    account_versions = {(e.aggregate_id, e.aggregate_version): e for e in log["accounts.events"]}
    stock_versions = {(e.aggregate_id, e.aggregate_version) for e in log["inventory.events"]}
    for command in answered:
        if command.status is None or not 200 <= command.status < 300:
            continue
        answer = json.loads(command.answer)
        parts = command.path.strip("/").split("/")
        if parts == ["orders"]:
            order_id = command.body["order_id"]
            audit.check("accepted commands in the log", order_id in placed, f"order {order_id}")
        elif parts[0] == "accounts" and len(parts) == 3:
            event = account_versions.get((parts[1], int(answer["version"])))
            audit.check(
                "accepted commands in the log",
                event is not None and event.payload["amount"] == command.body["amount"],
                f"{command.path} {command.body} -> version {answer['version']}",
            )
        elif parts[0] == "products":
            audit.check(
                "accepted commands in the log",
                (parts[1], int(answer["version"])) in stock_versions,
                f"{command.path} -> version {answer['version']}",
            )


async def audit_read_models(client: ApiClient, folded: Folded, audit: Audit) -> None:
    """The workers' read models (any worker answers, routed to the owner) = the fold."""

    async def row(path: str) -> dict[str, Any] | None:
        try:
            answer = await client.get(path)
        except Unreachable:
            return None
        return answer.json() if answer.status == 200 else None

    for account_id, account in folded.accounts.items():
        seen = await row(f"/accounts/{account_id}")
        audit.check(
            "account view = fold",
            seen is not None
            and (Decimal(seen["balance"]), seen["version"]) == (account.balance, account.version),
            f"{account_id}: {seen and (seen['balance'], seen['version'])} != "
            f"{(account.balance, account.version)}",
        )
    for sku, stock in folded.stocks.items():
        seen = await row(f"/products/{sku}")
        audit.check(
            "stock view = fold",
            seen is not None
            and (seen["on_hand"], seen["reserved"], seen["version"])
            == (stock.on_hand, stock.reserved, stock.version),
            f"{sku}: {seen} != {(stock.on_hand, stock.reserved, stock.version)}",
        )
    for order_id, order in folded.orders.items():
        seen = await row(f"/orders/{order_id}")
        audit.check(
            "order view = fold",
            seen is not None and (seen["status"], seen["version"]) == (order.status, order.version),
            f"{order_id}: {seen and (seen['status'], seen['version'])} != "
            f"{(order.status, order.version)}",
        )
    by_customer: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for order_id, order in folded.orders.items():
        by_customer[order.customer_id].add((order_id, str(order.status)))
    for customer_id, expected in by_customer.items():
        seen = await row(f"/customers/{customer_id}/orders")
        listed = {(o["order_id"], o["status"]) for o in (seen or {}).get("orders", [])}
        audit.check(
            "orders_by_customer = fold",
            listed == expected,
            f"{customer_id}: missing {sorted(expected - listed)[:3]}, "
            f"extra {sorted(listed - expected)[:3]}",
        )


def audit_log(log: Log, answered: Sequence[FinishedCommand] = ()) -> tuple[Audit, Folded]:
    """Every check that needs only the log (and what clients were told)."""
    audit = Audit()
    audit_versions(log, audit)
    folded = fold(log)
    audit_money(log, folded, audit)
    audit_stock(log, folded, audit)
    audit_orders_final(folded, audit)
    audit_acknowledged(answered, log, audit)
    return audit, folded
