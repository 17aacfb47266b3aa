"""A read model's consumer waits up to FOLD_FOLLOW_WAIT_MS for its fetch to fill: few
fetches a second instead of one per record; consumers on a command's path never wait."""

from __future__ import annotations

from typing import Any

import pytest

from agents.command_side import TAIL_WAIT_MS
from app import kafka_clients as clients
from app.settings import Settings, settings


class RecordedConsumer:
    """Stands in for AIOKafkaConsumer: keeps the options it was built with."""

    built: list[dict[str, Any]] = []

    def __init__(self, **options: Any) -> None:
        RecordedConsumer.built.append(options)

    async def start(self) -> None:
        pass


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    RecordedConsumer.built = []
    monkeypatch.setattr(clients, "AIOKafkaConsumer", RecordedConsumer)
    return RecordedConsumer.built


def test_the_wait_defaults_to_a_hundred_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOLD_FOLLOW_WAIT_MS", raising=False)
    assert Settings().fold_follow_wait_ms == 100


@pytest.mark.parametrize("raw", ["-1", "10001"])
def test_an_impossible_wait_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("FOLD_FOLLOW_WAIT_MS", raw)
    refusal = f"setting FOLD_FOLLOW_WAIT_MS must be an integer between 0 and 10000, got '{raw}'"
    with pytest.raises(SystemExit) as stop:
        Settings()
    assert stop.value.code == refusal


async def test_a_following_consumer_waits_as_set(
    monkeypatch: pytest.MonkeyPatch, recorded: list[dict[str, Any]]
) -> None:
    monkeypatch.setattr(
        clients, "settings", settings.model_copy(update={"fold_follow_wait_ms": 40})
    )
    await clients.started_consumer(group_id=None, following=True)
    assert recorded[0]["fetch_max_wait_ms"] == 40
    assert recorded[0]["fetch_min_bytes"] > 64 * 1024  # the wait, not the bytes, ends it


async def test_a_catching_up_consumer_does_not_wait(recorded: list[dict[str, Any]]) -> None:
    await clients.started_consumer(group_id=None)
    assert "fetch_max_wait_ms" not in recorded[0]
    assert "fetch_min_bytes" not in recorded[0]


async def test_a_command_side_tail_waits_its_own_time(
    recorded: list[dict[str, Any]],
) -> None:
    # what another producer appended is part of the next decision; a refusal checks the
    # log's end first, so the tail trails as a read model does
    await clients.started_consumer(group_id=None, following=True, wait_ms=TAIL_WAIT_MS)
    assert recorded[0]["fetch_max_wait_ms"] == TAIL_WAIT_MS == 100
