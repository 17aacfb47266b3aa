"""The account read models: each account's state and its events by version, one batched
fold of `accounts.events` into partition stores (tables/state_fold.py, agents/folds.py)."""

from __future__ import annotations

from domain.accounts import ACCOUNTS
from models.accounts import Account
from tables.state_fold import StateFold

accounts_read_model: StateFold[Account] = StateFold(
    "accounts-projection", "accounts.events", ACCOUNTS, history=True
)
"""Each account's state (`s/<id>`) and its events by version (`h/<id>/<v>`)."""
