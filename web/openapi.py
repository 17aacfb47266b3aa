"""`GET /openapi.json`: the HTTP contract as OpenAPI 3.1, built from the live routes.

Each route's operation is the `@operation` declared on its view method, with the
request and response schemas of the same pydantic models the views validate and
write; a route without one is listed under `x-undocumented` (a test fails on it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from faust.web import Request, Response, View
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from app.main import app
from web.answers import Index
from web.operations import HEADERS, JSON, Answer, Body, Operation, declared, operation

log = logging.getLogger(__name__)

TAGS = (
    ("accounts", "Open accounts and move money; read balances, history, past states."),
    ("products", "Stock products; read what is on hand, reserved and available."),
    ("orders", "Place orders (the saga takes payment, reserves stock, ships); follow them."),
    ("analytics", "Windowed figures of the order stream, and the dashboard's live feed."),
    ("contracts", "The JSON Schema of every event type and version on the topics."),
    ("operations", "Readiness, health, lag, metrics, dead letters, this document."),
)
DESCRIPTION = """Event sourcing and CQRS on Kafka. A command (POST) is decided by the worker \
that owns its aggregate's partition and answered with the events it appended; reads (GET) \
are served from read models folded from those events, by whichever worker holds them (any \
worker forwards). Every refusal is the same JSON envelope: `error` (a stable code), \
`reason`, and its facts.

Retries are safe with an `Idempotency-Key`. Write endpoints need `Authorization: Bearer \
<API_TOKEN>` when the worker runs with API_TOKEN set. Money is a decimal string ("12.50"), \
never a float."""

FAUST_ROUTES: Mapping[tuple[str, str], Operation] = {
    ("/", "GET"): Operation(
        summary="Is the web server up?",
        tag="operations",
        answers=(Answer(200, 'faust\'s index page: always `{"status": "OK"}`.', Index),),
        operation_id="Index",
    )
}
"""Routes faust itself serves, which carry no declaration of ours."""


def routes(web: Any) -> Iterable[tuple[str, str, Operation | None]]:
    """(path, method, its operation or None) for every route of the web server; HEAD is
    left out (faust answers it for every route, as its GET without the body)."""
    for path, view in sorted(web.views.items()):
        for method in sorted(view.get_methods() - {"HEAD"}):
            found = declared(view.methods[method.lower()]) or FAUST_ROUTES.get((path, method))
            yield path, method, found


def build(web: Any) -> dict[str, Any]:
    """The document for the routes of `web` (faust's web server)."""
    listed = list(routes(web))
    schemas = _Schemas(op for _, _, op in listed if op is not None)
    paths: dict[str, dict[str, Any]] = {}
    for path, method, op in listed:
        if op is not None:
            paths.setdefault(path, {})[method.lower()] = _operation(op, schemas)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "shop", "version": _version(), "description": DESCRIPTION},
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": paths,
        "components": {
            "schemas": schemas.definitions,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    undocumented = [f"{method} {path}" for path, method, op in listed if op is None]
    if undocumented:
        log.warning("routes without an @operation: %s", ", ".join(undocumented))
        document["x-undocumented"] = undocumented
    return document


class _Schemas:
    """Every model's JSON Schema, once, under components/schemas: request bodies as
    validated, responses as serialized (money is a string out, a string or integer in)."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
        for op in operations:
            if op.body is not None:
                wanted[(op.body, "validation")] = None
            for answer in op.answers:
                for model in _models(answer.body):
                    wanted[(model, "serialization")] = None
        refs, top = models_json_schema(list(wanted), ref_template="#/components/schemas/{model}")
        self.refs = refs
        self.definitions: dict[str, Any] = top.get("$defs", {})

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(self.refs[(model, mode)])

    def body(self, body: Body) -> dict[str, Any]:
        if isinstance(body, dict):
            return body
        models = _models(body)
        if len(models) == 1:
            return self.ref(models[0], "serialization")
        return {"anyOf": [self.ref(m, "serialization") for m in models]}


def _models(body: Body) -> tuple[type[BaseModel], ...]:
    if body is None or isinstance(body, dict):
        return ()
    return body if isinstance(body, tuple) else (body,)


def _operation(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        spec["description"] = op.description
    if op.params:
        spec["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.description,
                "schema": dict(p.schema),
            }
            for p in op.params
        ]
    if op.body is not None:
        spec["requestBody"] = {
            "required": any(f.is_required() for f in op.body.model_fields.values()),
            "content": {JSON: {"schema": schemas.ref(op.body, "validation")}},
        }
    if op.secured:
        spec["security"] = [{"bearer": []}]
    spec["responses"] = {str(a.status): _response(a, op, schemas) for a in op.answers}
    return spec


def _response(answer: Answer, op: Operation, schemas: _Schemas) -> dict[str, Any]:
    response: dict[str, Any] = {"description": answer.description}
    if answer.body is not None:
        schema = schemas.body(answer.body)
        response["content"] = {media: {"schema": schema} for media in answer.media}
    if answer.headers:
        response["headers"] = {name: HEADERS[name] for name in answer.headers}
    links = op.links.get(answer.status)
    if links:
        response["links"] = {
            name: {
                "operationId": link.operation_id,
                "parameters": dict(link.parameters),
                "description": link.description,
            }
            for name, link in links.items()
        }
    return response


def _version() -> str:
    try:
        return metadata.version("shop")
    except metadata.PackageNotFoundError:  # run from a source tree never installed
        return "0.0.0"


_built: dict[str, Any] = {}


@app.page("/openapi.json")
class OpenApiView(View):
    @operation(
        "This document",
        tag="operations",
        answers=(Answer(200, "OpenAPI 3.1, for every route.", {"type": "object"}),),
        operation_id="OpenApi",
    )
    async def get(self, request: Request) -> Response:
        """Built once per worker from its routes: clients can be generated from it."""
        if not _built:
            _built.update(build(app.web))
        return self.json(_built)
