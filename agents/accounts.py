"""Account agents: the command side (its agent and writers) and the projection (query side)."""

from __future__ import annotations

from typing import Any

from agents.command_side import CommandSide
from agents.folds import FoldRunner
from agents.service import Service
from app.main import app
from app.topics import account_commands, account_events, inputs
from domain.accounts import ACCOUNTS
from tables import accounts as t

account_side = CommandSide(ACCOUNTS, follows=account_commands, events=account_events)
app.service(account_side)  # type: ignore[arg-type]

account_service = Service(
    name="accounts",
    side=account_side,
    commands=account_commands,
)


@app.agent(inputs(account_commands), name="accounts-service")
async def run_accounts(stream: Any) -> None:
    await account_service.run("accounts-service", stream)


account_projection = FoldRunner(t.accounts_read_model, follows=account_commands)
"""accounts.events, folded in batches where each partition's commands are decided."""
app.service(account_projection)  # type: ignore[arg-type]
