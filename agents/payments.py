"""The payments service: capture each order's total from the customer's account; refund."""

from __future__ import annotations

from typing import Any

from agents.command_side import CommandSide
from agents.service import Service
from app.main import app
from app.topics import account_commands, inputs, order_events, payment_answers, payment_events
from domain.payments import PAYMENTS
from domain.saga import payments_answer, payments_inbound, payments_outbound

payment_side = CommandSide(PAYMENTS, follows=payment_answers, events=payment_events)
app.service(payment_side)  # type: ignore[arg-type]

payment_service = Service(
    name="payments",
    side=payment_side,
    reacts_to={name: payments_inbound for name in order_events.topics},
    answers=(payment_answers.get_topic_name(), payments_answer),
    outbound=payments_outbound,
    targets={"accounts": account_commands},
    answer_topics={"payments": payment_answers.get_topic_name()},
)


@app.agent(inputs(order_events, payment_answers), name="payments-service")
async def run_payments(stream: Any) -> None:
    await payment_service.run("payments-service", stream)
