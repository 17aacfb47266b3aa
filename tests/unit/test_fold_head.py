"""`fold_head`: what a fold reads of an event, on a fast path for today's events of our
own topics, and through the full validation for anything else (with its error)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from models.envelope import EventEnvelope
from models.upcasting import UnknownSchemaVersion, decode_event, fold_head

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def envelope(**changes: Any) -> dict[str, Any]:
    event = EventEnvelope(
        event_id=uuid.uuid4(),
        event_type="MoneyDeposited",
        schema_version=1,
        aggregate_type="account",
        aggregate_id="acc-1",
        aggregate_version=3,
        occurred_at=NOW,
        correlation_id="c",
        causation_id="c",
        payload={"amount": "10.00", "reference": None},
    ).model_dump(mode="json")
    return {**event, **changes}


def raw(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def test_the_fast_path_reads_what_the_full_decode_reads() -> None:
    good = raw(envelope())
    head = fold_head(good)
    full = decode_event(good)
    assert head == (full.aggregate_id, 3, "MoneyDeposited", full.occurred_at, full.payload)


def test_an_older_schema_version_is_upcast() -> None:
    old = envelope(
        event_type="OrderPlaced",
        schema_version=1,
        aggregate_type="order",
        payload={
            "customer_id": "c",
            "lines": [{"sku": "S", "quantity": 1, "unit_price": "1.00"}],
            "total": "1.00",
        },
    )
    head = fold_head(raw(old))
    assert head.payload["discount"] == "0.00"  # what v2 added
    assert head.payload == decode_event(raw(old)).payload


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x00not json", ValidationError),
        (raw(envelope(aggregate_version=0)), ValidationError),
        (raw(envelope(aggregate_id="bad id\n")), ValidationError),
        (raw(envelope(occurred_at="2026-03-01T12:00:00")), ValidationError),  # no zone
        (raw(envelope(extra_field=1)), ValidationError),
        (raw(envelope(event_id="not-a-uuid")), ValidationError),
        (raw(envelope(correlation_id=7)), ValidationError),
        (raw(envelope(schema_version=9)), UnknownSchemaVersion),
        (raw(envelope(event_type="Nope")), UnknownSchemaVersion),
    ],
)
def test_anything_off_gets_the_full_decodes_error(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        fold_head(data)
