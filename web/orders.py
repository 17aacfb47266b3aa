"""Order endpoints: place, complete, cancel (commands); by id, timeline, by customer, by status."""

from __future__ import annotations

import heapq
import uuid
from typing import Any

from faust.web import Request, Response, View

from agents.folds import NotHere
from agents.open_orders import SagaBusy
from agents.orders import open_orders, orders_projection, orders_timeline
from app.main import app
from app.metrics import SAGA_REFUSED_ORDERS
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
from tables.partition_store import PartitionStore
from web.answers import CustomerOrders, OrdersPage, OrderTimeline
from web.http import (
    HttpError,
    StateRows,
    admit_command,
    answer_command,
    check_id,
    command_body,
    counted_param,
    execute,
    handles_errors,
    idempotency_key,
    min_version_param,
    new_command,
    not_ready,
    owner_route,
    read_at_least,
    read_body,
    request_trace,
    result_response,
    store_of,
)
from web.operations import (
    ID_SCHEMA,
    IDEMPOTENCY_KEY,
    IF_MATCH,
    MAX_STANDBY_LAG,
    MIN_VERSION,
    NOT_FOUND,
    RETRY_AFTER,
    Answer,
    Link,
    Param,
    command_answers,
    counted,
    operation,
    path_id,
    read_answers,
)
from web.partitions import PARTITIONS, gathered

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
        SAGA_REFUSED_ORDERS.inc()
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


ORDER_ID = path_id("order_id", "The order")
PLACED = {
    "GetOrder": Link(
        "OrderView",
        {"order_id": "$response.body#/order_id", "min_version": "$response.body#/version"},
        "Follow the order as the saga carries it on",
    ),
    "GetTimeline": Link("TimelineView", {"order_id": "$response.body#/order_id"}, "Its steps"),
    "CancelOrder": Link("CancelOrderView", {"order_id": "$response.body#/order_id"}, "Cancel it"),
    "CompleteOrder": Link(
        "CompleteOrderView", {"order_id": "$response.body#/order_id"}, "Complete it once shipped"
    ),
}
SAGA_BUSY = Answer(
    503,
    "`saga_busy`: the saga already carries SAGA_MAX_OPEN_ORDERS orders on this worker, or "
    "`overloaded`: the worker is at capacity, or `stopping`: the worker is stopping (send it "
    "to another). Nothing was placed: retry.",
    headers=(RETRY_AFTER,),
)


def order_view(row: dict[str, Any]) -> dict[str, Any]:
    return Order.model_validate(row).model_dump(mode="json")


@app.page("/orders")
class OrdersView(View):
    @operation(
        "Place an order",
        tag="orders",
        body=PlaceOrderRequest,
        params=(IDEMPOTENCY_KEY, IF_MATCH),
        answers=command_answers(202, SAGA_BUSY, rejections=(409,)),
        secured=True,
        links={202: PLACED},
        operation_id="PlaceOrder",
    )
    @handles_errors
    async def post(self, request: Request) -> Response:
        """202: the order is placed as `pending` and the saga carries it on (payment,
        stock, shipping); follow it with `GET /orders/{order_id}`. Its id is `order_id`
        if given, else derived from the Idempotency-Key, else new."""
        admit_command(request)
        admit_order()
        body = await read_body(request, PlaceOrderRequest)
        order_id = order_id_for(request, body)
        cmd = new_command(
            request, order_id, body.command(), body.expected_version, correlation_id=order_id
        )
        result = await execute(order_commands, cmd, request_trace(request))
        status = "pending" if result.outcome == "accepted" else None
        return result_response(self, result, 202, order_id=order_id, order_status=status)

    @operation(
        "Orders in a status",
        tag="orders",
        params=(
            Param("status", "query", {"enum": list(STATUSES)}, "The status.", required=True),
            counted("limit", 1, MAX_PAGE, 100, "Orders per page."),
            Param("after", "query", ID_SCHEMA, "The `next_after` of the page before."),
            PARTITIONS,
        ),
        answers=read_answers(Answer(200, "A page of orders, by order id.", OrdersPage)),
        operation_id="OrdersInStatus",
    )
    @handles_errors
    async def get(self, request: Request) -> Response:
        """A page of the orders in one status, by order id: each partition's first page
        after `after`, merged."""
        status = request.query.get("status", "")
        if status not in STATUSES:
            raise HttpError(
                422,
                "invalid_request",
                "invalid fields: status",
                fields=[{"field": "status", "reason": f"one of {', '.join(STATUSES)}"}],
            )
        limit = counted_param(request, "limit", 100, 1, MAX_PAGE)
        after = request.query.get("after")
        if after is not None:
            check_id(after, "after")

        def read(partitions: list[int]) -> list[dict[str, Any]]:
            shares = [t.orders_in(_index(p), status, after, limit) for p in partitions]
            return list(heapq.merge(*shares, key=lambda row: row["order_id"]))[:limit]

        page = (await gathered(request, read))[:limit]
        next_after = page[-1]["order_id"] if len(page) == limit else None
        return self.json({"status": status, "orders": page, "next_after": next_after})


@app.page("/orders/{order_id}")
class OrderView(View):
    @operation(
        "Read an order",
        tag="orders",
        params=(ORDER_ID, MIN_VERSION, MAX_STANDBY_LAG),
        answers=read_answers(Answer(200, "The order.", Order), NOT_FOUND, standby=True),
    )
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
    @operation(
        "An order's saga steps",
        tag="orders",
        params=(ORDER_ID, MAX_STANDBY_LAG),
        answers=read_answers(
            Answer(200, "Every event of the order's saga, in time order.", OrderTimeline),
            NOT_FOUND,
            standby=True,
        ),
    )
    @handles_errors
    @owner_route(routed, "order_id")
    async def get(self, request: Request, order_id: str) -> Response:
        steps = t.timeline(store_of(orders_timeline, order_id), order_id)
        if not steps:
            raise HttpError(404, "not_found", f"order {order_id} does not exist")
        return self.json({"order_id": order_id, "steps": steps})


async def _order_command(
    view: View, request: Request, order_id: str, payload: Any, expected: int | None
) -> Response:
    """A command on an order: its saga is its correlation, so its steps are traced."""
    return await answer_command(
        view,
        request,
        order_commands,
        order_id,
        payload,
        expected,
        correlation_id=order_id,
        accepted=202,
        order_id=order_id,
    )


@app.page("/orders/{order_id}/complete")
class CompleteOrderView(View):
    @operation(
        "Complete a shipped order",
        tag="orders",
        body=VersionOnlyRequest,
        params=(ORDER_ID, IDEMPOTENCY_KEY, IF_MATCH),
        answers=command_answers(202, rejections=(404, 409)),
        secured=True,
    )
    @handles_errors
    async def post(self, request: Request, order_id: str) -> Response:
        body = await command_body(request, VersionOnlyRequest, order_id=order_id)
        return await _order_command(self, request, order_id, CompleteOrder(), body.expected_version)


@app.page("/orders/{order_id}/cancel")
class CancelOrderView(View):
    @operation(
        "Cancel an order",
        tag="orders",
        body=CancelOrderRequest,
        params=(ORDER_ID, IDEMPOTENCY_KEY, IF_MATCH),
        answers=command_answers(202, rejections=(404, 409)),
        secured=True,
    )
    @handles_errors
    async def post(self, request: Request, order_id: str) -> Response:
        body = await command_body(request, CancelOrderRequest, order_id=order_id)
        payload = CancelOrder(reason=body.reason)
        return await _order_command(self, request, order_id, payload, body.expected_version)


@app.page("/customers/{customer_id}/orders")
class CustomerOrdersView(View):
    @operation(
        "A customer's orders",
        tag="orders",
        params=(path_id("customer_id", "The customer"), PARTITIONS),
        answers=read_answers(Answer(200, "Every order of the customer.", CustomerOrders)),
    )
    @handles_errors
    async def get(self, request: Request, customer_id: str) -> Response:
        """Every partition's orders of the customer, merged by order id."""
        check_id(customer_id, "customer_id")

        def read(partitions: list[int]) -> list[dict[str, Any]]:
            shares = [t.orders_of(_index(p), customer_id) for p in partitions]
            return list(heapq.merge(*shares, key=lambda row: row["order_id"]))

        orders = await gathered(request, read)
        return self.json({"customer_id": customer_id, "orders": orders})


def _index(partition: int) -> PartitionStore:
    """The order fold's store of `partition` (its indexes); 503 if not readable here."""
    try:
        return orders_projection.store_at(partition)
    except NotHere as error:
        raise not_ready(str(error)) from None
