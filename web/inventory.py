"""Product stock endpoints: add stock (command); on hand, reserved, available (query)."""

from __future__ import annotations

from faust.web import Request, Response, View

from agents.inventory import stock_projection
from app.main import app
from app.topics import stock_commands
from models.inventory import AddStock, AddStockRequest, Stock
from tables.owners import owners
from web.answers import StockLevel
from web.http import (
    HttpError,
    StateRows,
    answer_command,
    command_body,
    handles_errors,
    min_version_param,
    owner_route,
    read_at_least,
)
from web.operations import (
    IDEMPOTENCY_KEY,
    IF_MATCH,
    MAX_STANDBY_LAG,
    MIN_VERSION,
    Answer,
    Link,
    command_answers,
    operation,
    path_id,
    read_answers,
)

SKU = path_id("sku", "The product's SKU")
STOCKED = {
    "GetStock": Link(
        "StockView",
        {"sku": "$request.path.sku", "min_version": "$response.body#/version"},
        "Read the stock after this change",
    )
}


@app.page("/products/{sku}/stock")
class AddStockView(View):
    @operation(
        "Add stock",
        tag="products",
        body=AddStockRequest,
        params=(SKU, IDEMPOTENCY_KEY, IF_MATCH),
        answers=command_answers(201, rejections=(409,)),
        secured=True,
        links={201: STOCKED},
    )
    @handles_errors
    async def post(self, request: Request, sku: str) -> Response:
        body = await command_body(request, AddStockRequest, sku=sku)
        payload = AddStock(quantity=body.quantity)
        return await answer_command(
            self, request, stock_commands, sku, payload, body.expected_version, sku=sku
        )


@app.page("/products/{sku}")
class StockView(View):
    @operation(
        "A product's stock",
        tag="products",
        params=(SKU, MIN_VERSION, MAX_STANDBY_LAG),
        answers=read_answers(
            Answer(200, "On hand, reserved by orders under way, available.", StockLevel),
            Answer(404, "The SKU was never stocked (`not_found`)."),
            standby=True,
        ),
    )
    @handles_errors
    @owner_route(owners, "sku")  # the worker that decides the SKU's commands
    async def get(self, request: Request, sku: str) -> Response:
        row = await read_at_least(StateRows(stock_projection), sku, min_version_param(request))
        if row is None:
            raise HttpError(404, "not_found", f"SKU {sku} is not stocked")
        state = Stock.model_validate(row)
        return self.json(
            {
                "sku": sku,
                "on_hand": state.on_hand,
                "reserved": state.reserved,
                "available": state.available,
                "version": state.version,
            }
        )
