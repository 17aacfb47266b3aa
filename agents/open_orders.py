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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from models.envelope import EventEnvelope
from models.orders import OrderCancelled, OrderPlaced, OrderShipped

SAGA_ENDS = frozenset({OrderShipped.__name__, OrderCancelled.__name__})
"""After these the saga asks nothing more of the order's own steps."""


class SagaBusy(Exception):
    """This worker's share of the saga is full: a new order waits for one to finish."""


class OpenOrders:
    """A Watcher of the order side: the ids of orders placed here and not final."""

    def __init__(self, limit: int, gauge: Callable[[int], None] = lambda count: None) -> None:
        self.limit = limit
        self._gauge = gauge
        self._open: dict[int, set[str]] = {}

    def appended(self, partition: int, events: Sequence[EventEnvelope]) -> None:
        orders = self._open.setdefault(partition, set())
        for event in events:
            if event.event_type == OrderPlaced.__name__:
                orders.add(event.aggregate_id)
            elif event.event_type in SAGA_ENDS:
                orders.discard(event.aggregate_id)
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
