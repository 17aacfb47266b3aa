"""Account agents: the command handler (command side) and the projection (query side)."""

from __future__ import annotations

from typing import Any

from agents.commands import CommandHandler
from app.main import app
from app.topics import account_commands, account_events
from domain.accounts import ACCOUNTS
from models.envelope import EventEnvelope
from tables import accounts as t

account_handler = CommandHandler(
    decider=ACCOUNTS, state=t.account_state, results=t.account_commands, events=account_events
)


@app.agent(account_commands, name="account-commands")
async def handle_account_commands(stream: Any) -> None:
    async for raw in stream:
        await account_handler.handle(raw)


@app.agent(account_events, name="account-projection")
async def project_accounts(stream: Any) -> None:
    async for raw in stream:
        t.project(EventEnvelope.model_validate_json(raw))
