"""The stock read model: inventory.events folded where the stock commands are decided."""

from __future__ import annotations

from agents.folds import FoldRunner
from app.main import app
from tables import inventory as t

stock_projection = FoldRunner(t.stock_read_model)
"""inventory.events, folded in batches where each partition's commands are decided."""
app.service(stock_projection)  # type: ignore[arg-type]
