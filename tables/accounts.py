"""Account tables: the command side's aggregate state and the query side's read models.

The command side's tables are faust tables keyed by account id. The read models,
each account's state and its events by version, are one batched fold of
`accounts.events` into partition stores (tables/state_fold.py, agents/folds.py).
"""

from __future__ import annotations

from domain.accounts import ACCOUNTS
from models.accounts import Account
from tables.aggregates import aggregate_tables
from tables.state_fold import StateFold

account_side = aggregate_tables("account")

accounts_read_model: StateFold[Account] = StateFold(
    "accounts-projection", "accounts.events", ACCOUNTS, history=True
)
"""Each account's state (`s/<id>`) and its events by version (`h/<id>/<v>`)."""
