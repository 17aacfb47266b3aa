"""Inventory tables: stock per SKU for the command side, and the stock read model."""

from __future__ import annotations

from domain.inventory import STOCKS
from models.inventory import Stock
from tables.aggregates import aggregate_tables
from tables.state_fold import StateFold

stock_side = aggregate_tables("stock")

stock_read_model: StateFold[Stock] = StateFold("stock-projection", "inventory.events", STOCKS)
"""Each SKU's on-hand, reserved and available units (`s/<sku>`)."""
