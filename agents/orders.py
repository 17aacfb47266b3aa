"""The orders' read models, and the bound on orders under way in the saga on this worker."""

from __future__ import annotations

from agents.folds import FoldRunner
from agents.open_orders import OpenOrders
from agents.services import SIDE_OF
from app.main import app
from app.metrics import SAGA_OPEN_ORDERS, SAGA_OPEN_ORDERS_LIMIT, SAGA_ORDER_SECONDS
from app.settings import settings
from tables import orders as t
from tables.read_models import BatchFold

open_orders = OpenOrders(
    settings.saga_max_open_orders,
    SAGA_OPEN_ORDERS.set,
    lambda outcome, seconds: SAGA_ORDER_SECONDS.labels(outcome=outcome).observe(seconds),
)
"""Orders under way on this worker's partitions: POST /orders waits beyond the bound."""
SIDE_OF["orders"].watchers.append(open_orders)
SAGA_OPEN_ORDERS_LIMIT.set(open_orders.limit)


def _folded(fold: BatchFold) -> FoldRunner:
    runner = FoldRunner(fold)
    app.service(runner)  # type: ignore[arg-type]
    return runner


# the read models, each a batched fold where the orders' commands are decided
orders_projection = _folded(t.orders_read_model)
orders_timeline = _folded(t.Timeline())
