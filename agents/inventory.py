"""The inventory service: stock per SKU, each order's reservation, and the stock read model."""

from __future__ import annotations

from typing import Any

from agents.command_side import CommandSide
from agents.folds import FoldRunner
from agents.service import Service
from app.main import app
from app.topics import (
    inputs,
    order_events,
    reservation_answers,
    reservation_events,
    stock_commands,
    stock_events,
)
from domain.inventory import RESERVATIONS, STOCKS
from domain.saga import reservations_answer, reservations_inbound, reservations_outbound
from tables import inventory as t

stock_side = CommandSide(STOCKS, follows=stock_commands, events=stock_events)
reservation_side = CommandSide(RESERVATIONS, follows=reservation_answers, events=reservation_events)
app.service(stock_side)  # type: ignore[arg-type]
app.service(reservation_side)  # type: ignore[arg-type]

stock_service = Service(
    name="stock",
    side=stock_side,
    commands=stock_commands,
)

reservation_service = Service(
    name="reservations",
    side=reservation_side,
    reacts_to={name: reservations_inbound for name in order_events.topics},
    answers=(reservation_answers.get_topic_name(), reservations_answer),
    outbound=reservations_outbound,
    targets={"inventory": stock_commands},
    answer_topics={"reservations": reservation_answers.get_topic_name()},
)


@app.agent(inputs(stock_commands), name="stock-service")
async def run_stock(stream: Any) -> None:
    await stock_service.run("stock-service", stream)


@app.agent(inputs(order_events, reservation_answers), name="reservations-service")
async def run_reservations(stream: Any) -> None:
    await reservation_service.run("reservations-service", stream)


stock_projection = FoldRunner(t.stock_read_model, follows=stock_commands)
"""inventory.events, folded in batches where each partition's commands are decided."""
app.service(stock_projection)  # type: ignore[arg-type]
