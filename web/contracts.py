"""Event contracts over HTTP: every event type's JSON Schema, per schema version.

- `GET /contracts`: one row per event type (context, topic, current version,
  versions) and the envelope's schema.
- `GET /contracts/{event_type}`: that event type's schema for every version.
"""

from __future__ import annotations

from faust.web import Request, Response, View

from app.main import app
from models.contracts import current, find, index
from web.answers import Contract, ContractIndex
from web.http import HttpError, handles_errors
from web.operations import Answer, Param, operation


@app.page("/contracts")
class ContractsView(View):
    @operation(
        "Every event type's contract",
        tag="contracts",
        answers=(Answer(200, "One row per event type, and the envelope's schema.", ContractIndex),),
    )
    async def get(self, request: Request) -> Response:
        contracts = current()
        return self.json({"events": index(contracts), "envelope": contracts["envelope"]})


@app.page("/contracts/{event_type}")
class ContractView(View):
    @operation(
        "One event type's schemas",
        tag="contracts",
        params=(
            Param(
                "event_type",
                "path",
                {"type": "string", "minLength": 1, "maxLength": 200},
                "An event type, e.g. `OrderPlaced`.",
                True,
            ),
        ),
        answers=(
            Answer(200, "The JSON Schema of each of its versions.", Contract),
            Answer(404, "`unknown_event_type`."),
        ),
    )
    @handles_errors
    async def get(self, request: Request, event_type: str) -> Response:
        contracts = current()
        found = find(contracts, event_type)
        if found is None:
            raise HttpError(
                404, "unknown_event_type", f"no event type {event_type!r}", event_type=event_type
            )
        context, event = found
        return self.json(
            {
                "event_type": event_type,
                "context": context,
                "topic": contracts["contexts"][context]["topic"],
                "current_version": event["current_version"],
                "versions": event["versions"],
            }
        )
