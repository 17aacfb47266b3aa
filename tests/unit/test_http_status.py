"""A command's answer says what happened; the web layer alone maps it to an HTTP status."""

from __future__ import annotations

import pytest

from models.envelope import CommandResult, Rejection
from web.answers import CommandAnswer
from web.http import http_status


def answer(code: str | None = None) -> CommandResult:
    return CommandResult(
        command_id="c1",
        aggregate_id="acc-1",
        outcome="accepted" if code is None else "rejected",
        version=1,
        rejection=None if code is None else Rejection(code=code, reason="because"),
    )


def test_an_accepted_command_is_201_or_what_its_route_says() -> None:
    assert http_status(answer()) == 201
    assert http_status(answer(), accepted=202) == 202  # an order: the saga carries on


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("not_found", 404),
        ("invalid_command", 422),
        ("idempotency_key_reused", 422),
        ("insufficient_funds", 409),
        ("version_conflict", 409),
        ("invalid_transition", 409),
    ],
)
def test_a_rejection_is_answered_with_its_codes_status(code: str, status: int) -> None:
    assert http_status(answer(code), accepted=202) == status


def test_an_answer_from_a_worker_of_an_earlier_version_still_reads() -> None:
    # those answers carried the HTTP status they mapped to
    raw = answer("insufficient_funds").model_dump(mode="json") | {"status": 409}
    assert CommandResult.model_validate(raw) == answer("insufficient_funds")


def test_the_http_answer_keeps_its_status() -> None:
    body = answer().model_dump(mode="json") | {"status": 201}
    assert CommandAnswer.model_validate(body).status == 201
