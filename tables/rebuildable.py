"""The read models `shop rebuild` can fold again, by the name the command takes.

Pure folds only (no App, no agents), so a rebuild's refold process imports these
and nothing of the worker (agents/refold.py)."""

from __future__ import annotations

from collections.abc import Callable

from tables.accounts import accounts_read_model
from tables.analytics import WindowFold
from tables.inventory import stock_read_model
from tables.orders import Timeline, orders_read_model
from tables.read_models import BatchFold

REBUILDABLE_FOLDS: dict[str, Callable[[], BatchFold]] = {
    "accounts": lambda: accounts_read_model,
    "analytics": WindowFold,
    "orders": lambda: orders_read_model,
    "stock": lambda: stock_read_model,
    "timeline": Timeline,
}


def fold_named(name: str) -> BatchFold:
    """The rebuildable fold whose own name (`BatchFold.name`) is `name`."""
    for make in REBUILDABLE_FOLDS.values():
        fold = make()
        if fold.name == name:
            return fold
    raise KeyError(f"no rebuildable fold named {name!r}")
