"""The accounts' read model: accounts.events folded where the accounts' commands are decided."""

from __future__ import annotations

from agents.folds import FoldRunner
from app.main import app
from tables import accounts as t

account_projection = FoldRunner(t.accounts_read_model)
"""accounts.events, folded in batches where each partition's commands are decided."""
app.service(account_projection)  # type: ignore[arg-type]
