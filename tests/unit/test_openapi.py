"""The OpenAPI document against the routes the web server really has (no broker needed).

A route added without its `@operation`, or an operation whose route went away, fails
here before a client generated from the document ever sees the difference.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from faust.web import Request, Response, View
from openapi_spec_validator import validate

import app.worker as shop
from web.openapi import build, routes

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def web() -> Any:
    return shop.app.web


@pytest.fixture(scope="module")
def spec(web: Any) -> dict[str, Any]:
    return build(web)


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"] == "3.1.0"


def test_every_route_of_the_router_is_documented_and_nothing_else(
    web: Any, spec: dict[str, Any]
) -> None:
    served = {
        (route.method, route.resource.canonical)
        for route in web.web_app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert "x-undocumented" not in spec, spec.get("x-undocumented")
    assert served == set(operations(spec))


def test_a_view_without_its_operation_is_reported(web: Any) -> None:
    class Undeclared(View):
        async def get(self, request: Request) -> Response:
            return self.json({})

    class FakeWeb:
        views = {**web.views, "/undeclared": Undeclared(shop.app, web)}

    assert build(FakeWeb())["x-undocumented"] == ["GET /undeclared"]
    assert ("/undeclared", "GET", None) in list(routes(FakeWeb()))


def test_operation_ids_are_unique_and_links_name_real_operations_and_parameters(
    spec: dict[str, Any],
) -> None:
    by_id = {op["operationId"]: op for op in operations(spec).values()}
    assert len(by_id) == len(operations(spec))
    for op in operations(spec).values():
        for response in op["responses"].values():
            for link in response.get("links", {}).values():
                target = by_id[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= names, link


def test_path_parameters_are_declared_as_the_path_names_them(spec: dict[str, Any]) -> None:
    for (method, path), op in operations(spec).items():
        named = set(re.findall(r"\{([^}]+)\}", path))
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert named == declared, (method, path)


def test_write_endpoints_are_secured_and_say_what_they_refuse(spec: dict[str, Any]) -> None:
    for (method, path), op in operations(spec).items():
        if method != "POST":
            continue
        assert op.get("security") == [{"bearer": []}], path
        assert {"401", "422"} <= set(op["responses"]) or path.endswith("/retry"), path
        body = op.get("requestBody")
        if body is not None:
            ref = body["content"]["application/json"]["schema"]["$ref"]
            model = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
            # unknown fields are refused (422), so the fuzzer's extra fields must be too
            assert model.get("additionalProperties") is False, ref


def test_every_refusal_is_the_error_envelope_and_money_is_never_a_float(
    spec: dict[str, Any],
) -> None:
    schemas = spec["components"]["schemas"]
    envelope = schemas["ErrorBody"]
    assert set(envelope["required"]) == {"error", "reason"}
    text = str(spec)
    assert "'type': 'number'" not in text  # no float anywhere: money is a string
    amount = schemas["AmountRequest"]["properties"]["amount"]["anyOf"]
    assert {a["type"] for a in amount} == {"string", "integer"}
