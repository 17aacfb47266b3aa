"""What the API answers, as pydantic models: the bodies the OpenAPI document promises.

The command and read views build these shapes; the document takes its response
schemas from here, and schemathesis checks in CI that each answer conforms.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from models.dead_letters import DeadLetter
from models.envelope import CommandResult, EventEnvelope
from models.orders import OrderStatus


class FieldError(BaseModel):
    field: str
    """The request field (`amount`, `lines.0.sku`), path or query parameter, or header."""
    reason: str


class ErrorBody(BaseModel):
    """Every refusal: a stable `error` code, a sentence, and the facts that go with it."""

    model_config = ConfigDict(extra="allow")

    error: str
    reason: str
    fields: list[FieldError] | None = None
    """On 422 `invalid_request`: each invalid field with its reason."""


class CommandAnswer(CommandResult):
    """A command's answer: the recorded result; on a rejection, the error code and reason
    too, with its facts in `details` (and at the top level, e.g. `balance`)."""

    model_config = ConfigDict(extra="allow")

    status: int
    """The HTTP status the answer came with (the result itself records no transport)."""
    error: str | None = None
    reason: str | None = None
    details: dict[str, Any] | None = None


class AccountEvents(BaseModel):
    account_id: str
    version: int
    events: list[EventEnvelope]


class OrderSummary(BaseModel):
    """An order as the customer and status views list it."""

    model_config = ConfigDict(extra="allow")

    order_id: str
    status: OrderStatus
    version: int


class OrdersPage(BaseModel):
    status: OrderStatus
    orders: list[OrderSummary]
    next_after: str | None
    """Pass as `after` for the next page; null on the last page."""


class CustomerOrders(BaseModel):
    customer_id: str
    orders: list[OrderSummary]


class TimelineStep(BaseModel):
    at: str
    service: str
    event_type: str
    event_id: str
    aggregate: str
    version: int
    caused_by: str | None
    trace_id: str | None = None
    """The W3C trace id the event's record carried (the request's, or one the worker
    started): the same on every step of one order's saga."""
    payload: dict[str, Any]


class OrderTimeline(BaseModel):
    order_id: str
    steps: list[TimelineStep]


class StockLevel(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int
    version: int


class DeadLettersPage(BaseModel):
    dead_letters: list[DeadLetter]
    next_after: str | None


class BulkRetry(BaseModel):
    """What a bulk re-drive took (or, on a dry run, would take)."""

    dry_run: bool
    through: int
    """Only letters recorded below this offset of the dead-letter topic were taken. Pass
    a dry run's to the real run with the same filter: it re-drives exactly what the dry
    run counted, less any re-driven, resolved or discarded since."""
    matched: int
    """Dead letters the filter matches below `through`."""
    ids: list[str]
    """Those re-driven (dry run: to be), at most `limit`, in the order they were
    dead-lettered."""
    remaining: int
    """`matched` less `ids`: ask again with the same `through` for the rest."""


class ContractRow(BaseModel):
    event_type: str
    context: str
    topic: str
    current_version: int
    versions: list[int]


class ContractIndex(BaseModel):
    events: list[ContractRow]
    envelope: dict[str, Any]
    """The event envelope's JSON Schema."""


class Contract(BaseModel):
    event_type: str
    context: str
    topic: str
    current_version: int
    versions: dict[str, Any]
    """Each schema version's JSON Schema, by version."""


class Readiness(BaseModel):
    status: Literal["ok", "starting"]
    recovering: bool
    catching_up: dict[str, list[int]]
    """Command sides and folds still folding their log to its end, with their partitions."""
    active_partitions: int
    partitions: list[int]
    """The partitions this worker owns: it decides, folds and serves their keys."""
    web: str


class ReaderLagFigures(BaseModel):
    messages: int
    """Not yet processed, over every partition of the reader's topics."""
    seconds: int
    """Age of the oldest of them, in whole seconds; 0 when caught up."""


class WorkerOverview(BaseModel):
    url: str
    partitions: list[int]
    """The partitions it owns, as this worker's router knows the assignment."""
    state: str
    """starting, running, rebalancing, stalled, or unreachable (it did not answer)."""
    stalled: list[dict[str, Any]]


class Overview(BaseModel):
    """What the dashboard's operations panel shows: the whole shop, from one worker."""

    served_by: str
    readers: dict[str, ReaderLagFigures]
    """Each reader's lag, from Kafka's offsets (empty when they cannot be read: `lag_error`)."""
    lag_error: str | None
    dead_letters_open: int
    workers: list[WorkerOverview]


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "starting", "degraded"]
    recovering: bool
    catching_up: dict[str, list[int]]
    active_partitions: int
    partitions: list[int]
    web: str
    lag: dict[str, Any]
    stalled: list[dict[str, Any]]
    """Agents held on a system error."""
    reader_lag: int
    """Records this worker's readers have not read yet, summed (each reader's own)."""


class LagReport(BaseModel):
    model_config = ConfigDict(extra="allow")

    total: int
    threshold: int
    degraded: bool
    readers: dict[str, list[dict[str, Any]]]
    """Per reader, a row per topic partition it reads (`standby` false) or folds as a
    standby (`standby` true): its stored offset, the log end seen, the lag."""


class WindowSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    window: str
    size_seconds: int
    windows: list[dict[str, Any]]


class TopSkus(BaseModel):
    model_config = ConfigDict(extra="allow")

    window: str
    by_quantity: list[dict[str, Any]]
    by_revenue: list[dict[str, Any]]


class LiveFigures(BaseModel):
    """Everything the dashboard shows, in one answer."""

    server_time_ms: int
    live: WindowSummary
    main: WindowSummary
    top: TopSkus
    health: dict[str, Any]


class Index(BaseModel):
    status: Literal["OK"]
