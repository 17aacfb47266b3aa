"""Inventory tables: stock per SKU for the command side and the read model."""

from __future__ import annotations

from domain.inventory import STOCKS
from models.envelope import EventEnvelope
from tables.aggregates import aggregate_tables, table
from tables.read_models import fold_into

stock_side = aggregate_tables("stock")
stock = table("stock", "Read model: each SKU's on-hand, reserved and available units.")


def project(envelope: EventEnvelope) -> bool:
    return fold_into(stock, STOCKS, envelope, rewrite_repeat=True) is not None
