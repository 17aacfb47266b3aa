"""KAFKA_LINGER_MS: how long the producer holds a record to batch it; 0 (send at once,
group commit makes the batches) unless set, and a bad value is refused at start."""

from __future__ import annotations

import pytest

from app.settings import Settings
from tests.unit.app_process import shown_by_app


def test_records_go_out_at_once_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_LINGER_MS", raising=False)
    from app.main import app

    assert Settings().linger_ms == 0
    assert app.conf.producer_linger == 0


def test_the_worker_producer_lingers_as_set() -> None:
    assert shown_by_app("app.producer.linger_ms", KAFKA_LINGER_MS="7") == "7"


@pytest.mark.parametrize("raw", ["-1", "1001"])
def test_an_impossible_linger_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("KAFKA_LINGER_MS", raw)
    refusal = f"setting KAFKA_LINGER_MS must be an integer between 0 and 1000, got '{raw}'"
    with pytest.raises(SystemExit) as stop:
        Settings()
    assert stop.value.code == refusal
