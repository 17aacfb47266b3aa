"""Account agents: the command handler (command side) and the projection (query side)."""

from __future__ import annotations

from typing import Any

from agents.commands import CommandHandler
from agents.service import Service
from app.main import app
from app.topics import account_commands, account_events, inputs
from domain.accounts import ACCOUNTS
from models.envelope import EventEnvelope
from tables import accounts as t

account_service = Service(
    name="accounts",
    handler=CommandHandler(ACCOUNTS, *t.account_side, events=account_events),
    commands=account_commands,
)


@app.agent(inputs(account_commands), name="accounts-service")
async def run_accounts(stream: Any) -> None:
    async for event in stream.events():
        await account_service.process(event.message.topic, event.value)


@app.agent(account_events, name="accounts-projection")
async def project_accounts(stream: Any) -> None:
    async for raw in stream:
        t.project(EventEnvelope.model_validate_json(raw))
