"""Order endpoints: place, complete, cancel (commands); by id, timeline, by customer, by status."""

from __future__ import annotations

import uuid
from typing import Any

from faust.web import Request, Response, View

from agents.open_orders import SagaBusy
from agents.orders import (
    open_orders,
    orders_by_customer,
    orders_by_status,
    orders_projection,
    orders_timeline,
)
from app.main import app
from app.topics import order_commands
from models.orders import (
    STATUSES,
    CancelOrder,
    CancelOrderRequest,
    CompleteOrder,
    Order,
    PlaceOrderRequest,
    VersionOnlyRequest,
)
from tables import orders as t
from tables.owners import owners
from web.http import (
    HttpError,
    StateRows,
    admit_command,
    check_id,
    execute,
    handles_errors,
    idempotency_key,
    min_version_param,
    new_command,
    owner_route,
    read_at_least,
    read_body,
    result_response,
    store_of,
)

MAX_PAGE = 500

routed = owners
"""Reads go to the worker that decides the key's partition of order commands: it folds
the order read models of that partition (any key: customer and status views too)."""


def admit_order() -> None:
    """503 `saga_busy` with Retry-After, before the body is read, while the saga already
    carries its bound of orders on this worker (agents/open_orders.py)."""
    try:
        open_orders.check()
    except SagaBusy as busy:
        error = HttpError(503, "saga_busy", f"{busy}; the order was not placed: retry")
        error.headers["Retry-After"] = "1"
        raise error from None


def order_id_for(request: Request, body: PlaceOrderRequest) -> str:
    """The client's order id; else one derived from the Idempotency-Key (so a retry
    names the same order); else a new one."""
    if body.order_id:
        return body.order_id
    key = idempotency_key(request)
    seed = uuid.uuid5(uuid.NAMESPACE_URL, f"shop:order:{key}") if key else uuid.uuid4()
    return f"ord-{seed.hex[:16]}"


def order_view(row: dict[str, Any]) -> dict[str, Any]:
    return Order.model_validate(row).model_dump(mode="json")


@app.page("/orders")
class OrdersView(View):
    @handles_errors
    async def post(self, request: Request) -> Response:
        """Place an order: 202, the saga carries it on; follow it with GET /orders/{id}."""
        admit_command(request)
        admit_order()
        body = await read_body(request, PlaceOrderRequest)
        order_id = order_id_for(request, body)
        cmd = new_command(
            request, order_id, body.command(), body.expected_version, correlation_id=order_id
        )
        result = await execute(order_commands, cmd)
        status = "pending" if result.outcome == "accepted" else None
        return result_response(self, result, order_id=order_id, order_status=status)

    @handles_errors
    @owner_route(routed, "status", query=True)
    async def get(self, request: Request) -> Response:
        """A page of the orders in one status, by order id: ?status=&limit=&after=."""
        status = request.query["status"]
        if status not in STATUSES:
            raise HttpError(
                422,
                "invalid_request",
                "invalid fields: status",
                fields=[{"field": "status", "reason": f"one of {', '.join(STATUSES)}"}],
            )
        limit = _limit(request.query.get("limit", "100"))
        after = request.query.get("after")
        if after is not None:
            check_id(after, "after")
        page = t.orders_in(store_of(orders_by_status, status), status, after, limit)
        next_after = page[-1]["order_id"] if len(page) == limit else None
        return self.json({"status": status, "orders": page, "next_after": next_after})


def _limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise HttpError(
            422,
            "invalid_request",
            "invalid fields: limit",
            fields=[{"field": "limit", "reason": f"an integer from 1 to {MAX_PAGE}"}],
        )
    return int(raw)


@app.page("/orders/{order_id}")
class OrderView(View):
    @handles_errors
    @owner_route(routed, "order_id")
    async def get(self, request: Request, order_id: str) -> Response:
        rows = StateRows(orders_projection)
        row = await read_at_least(rows, order_id, min_version_param(request))
        if row is None:
            raise HttpError(404, "not_found", f"order {order_id} does not exist")
        return self.json(order_view(row))


@app.page("/orders/{order_id}/timeline")
class TimelineView(View):
    @handles_errors
    @owner_route(routed, "order_id")
    async def get(self, request: Request, order_id: str) -> Response:
        steps = t.timeline(store_of(orders_timeline, order_id), order_id)
        if not steps:
            raise HttpError(404, "not_found", f"order {order_id} does not exist")
        return self.json({"order_id": order_id, "steps": steps})


@app.page("/orders/{order_id}/complete")
class CompleteOrderView(View):
    @handles_errors
    async def post(self, request: Request, order_id: str) -> Response:
        admit_command(request)
        check_id(order_id, "order_id")
        body = await read_body(request, VersionOnlyRequest)
        cmd = new_command(
            request, order_id, CompleteOrder(), body.expected_version, correlation_id=order_id
        )
        return result_response(self, await execute(order_commands, cmd), order_id=order_id)


@app.page("/orders/{order_id}/cancel")
class CancelOrderView(View):
    @handles_errors
    async def post(self, request: Request, order_id: str) -> Response:
        admit_command(request)
        check_id(order_id, "order_id")
        body = await read_body(request, CancelOrderRequest)
        payload = CancelOrder(reason=body.reason)
        cmd = new_command(
            request, order_id, payload, body.expected_version, correlation_id=order_id
        )
        return result_response(self, await execute(order_commands, cmd), order_id=order_id)


@app.page("/customers/{customer_id}/orders")
class CustomerOrdersView(View):
    @handles_errors
    @owner_route(routed, "customer_id")
    async def get(self, request: Request, customer_id: str) -> Response:
        orders = t.orders_of(store_of(orders_by_customer, customer_id), customer_id)
        return self.json({"customer_id": customer_id, "orders": orders})
