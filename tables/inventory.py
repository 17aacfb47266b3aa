"""The inventory read model: stock per SKU, folded from `inventory.events`."""

from __future__ import annotations

from domain.inventory import STOCKS
from models.inventory import Stock
from tables.state_fold import StateFold

stock_read_model: StateFold[Stock] = StateFold("stock-projection", "inventory.events", STOCKS)
"""Each SKU's on-hand, reserved and available units (`s/<sku>`)."""
