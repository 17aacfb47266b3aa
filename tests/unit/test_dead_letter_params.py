"""The dead-letter endpoints' query parameters (web/dead_letter_params.py): the filter they
make, and a 422 naming the parameter for each bad one. No broker: a request stand-in."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from tables.dead_letters import LetterFilter
from web.dead_letter_params import letter_filter
from web.http import HttpError


def request(**query: str) -> Any:
    return SimpleNamespace(query=query)


def test_every_filter_parameter_is_taken() -> None:
    which = letter_filter(
        request(
            topic="t.orders.events",
            agent="saga",
            error_type="KeyError",
            error="missing",
            failed_after="2026-03-01T12:00:00Z",
            failed_before="2026-03-01T14:00:00+01:00",
            status="resolved",
        ),
        with_status=True,
    )
    assert which == LetterFilter(
        topic="t.orders.events",
        agent="saga",
        error_type="KeyError",
        error="missing",
        failed_after=datetime(2026, 3, 1, 12, tzinfo=UTC),
        failed_before=datetime(2026, 3, 1, 13, tzinfo=UTC),  # the same instant
        status="resolved",
    )


def test_no_parameter_is_every_letter_and_status_only_where_asked() -> None:
    assert letter_filter(request()) == LetterFilter()
    # the bulk retry takes dead letters only: a status there is not a filter
    assert letter_filter(request(status="resolved")) == LetterFilter()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"failed_after": "yesterday"}, "failed_after"),
        ({"failed_before": "2026-03-01T12:00:00"}, "failed_before"),  # no zone
        (
            {"failed_after": "2026-03-01T12:00:00Z", "failed_before": "2026-03-01T11:00:00Z"},
            "failed_before",
        ),
        ({"status": "lost"}, "status"),
        ({"topic": "x" * 250}, "topic"),
        ({"topic": ""}, "topic"),
        ({"agent": "stock service"}, "agent"),
        ({"error_type": "Key<Error>"}, "error_type"),
        ({"error": "e" * 201}, "error"),
        ({"failed_after": "0.5"}, "failed_after"),  # a Unix time to pydantic; not RFC 3339
        ({"failed_after": "2026-03-01"}, "failed_after"),
    ],
)
def test_a_bad_parameter_is_a_422_naming_it(query: dict[str, str], field: str) -> None:
    with pytest.raises(HttpError) as refused:
        letter_filter(request(**query), with_status=True)
    error = refused.value
    assert (error.status, error.code) == (422, "invalid_request")
    assert [f["field"] for f in error.facts["fields"]] == [field]
