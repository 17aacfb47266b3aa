"""Orders under way in the saga on this worker, and the bound on new ones.

An order costs the saga about forty records over twelve steps. When orders
arrive faster than the saga finishes them, every service works through a
growing backlog in arrival order, and every order's latency grows with it. So
each worker counts the orders placed on the partitions it decides that are not
final yet, and `POST /orders` is refused (503 `saga_busy`, Retry-After) while
that count is at SAGA_MAX_OPEN_ORDERS: the steps of orders under way go first,
and an order's latency stays near the bound over the saga's throughput.

The count starts at zero when a worker starts or is assigned a partition: orders
under way before are not counted (a few more are admitted, never fewer).

Each order counted is timed from its OrderPlaced to its OrderShipped or OrderCancelled
(the events' own times): the saga's completion time, for `/metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from models.envelope import EventEnvelope
from models.orders import OrderCancelled, OrderPlaced, OrderShipped

SAGA_ENDS = {OrderShipped.__name__: "shipped", OrderCancelled.__name__: "cancelled"}
"""After these the saga asks nothing more of the order's own steps (each an outcome)."""


class SagaBusy(Exception):
    """This worker's share of the saga is full: a new order waits for one to finish."""


class OpenOrders:
    """A Watcher of the order side: the ids of orders placed here and not final."""

    def __init__(
        self,
        limit: int,
        gauge: Callable[[int], None] = lambda count: None,
        finished: Callable[[str, float], None] = lambda outcome, seconds: None,
    ) -> None:
        self.limit = limit
        self._gauge = gauge
        self._finished = finished
        """Called with the outcome and the seconds from placed to it, per order ended."""
        self._open: dict[int, dict[str, datetime]] = {}
        """Partition -> its open orders' ids and when each was placed."""

    def appended(self, partition: int, events: Sequence[EventEnvelope]) -> None:
        orders = self._open.setdefault(partition, {})
        for event in events:
            if event.event_type == OrderPlaced.__name__:
                orders[event.aggregate_id] = event.occurred_at
            elif event.event_type in SAGA_ENDS:
                placed = orders.pop(event.aggregate_id, None)
                if placed is not None:
                    seconds = (event.occurred_at - placed).total_seconds()
                    self._finished(SAGA_ENDS[event.event_type], seconds)
        self._gauge(self.count())

    def released(self, partition: int) -> None:
        self._open.pop(partition, None)
        self._gauge(self.count())

    def count(self) -> int:
        return sum(len(orders) for orders in self._open.values())

    def check(self) -> None:
        """SagaBusy if a new order would exceed the bound."""
        if self.count() >= self.limit:
            raise SagaBusy(f"{self.count()} orders under way on this worker (limit {self.limit})")
