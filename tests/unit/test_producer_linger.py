"""KAFKA_LINGER_MS: how long the producer holds a record to batch it; 0 (send at once,
group commit makes the batches) unless set, and a bad value is refused at start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.settings import Settings


def test_records_go_out_at_once_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_LINGER_MS", raising=False)
    from app.main import app

    assert Settings().linger_ms == 0
    assert app.conf.producer_linger == 0


def test_the_worker_producer_lingers_as_set() -> None:
    shown = "from app.main import app; print(app.producer.linger_ms)"
    env = {**os.environ, "KAFKA_LINGER_MS": "7"}
    run = subprocess.run(
        [sys.executable, "-c", shown], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "7"


@pytest.mark.parametrize("raw", ["-1", "1001"])
def test_an_impossible_linger_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("KAFKA_LINGER_MS", raw)
    with pytest.raises(SystemExit, match=f"KAFKA_LINGER_MS must be between 0 and 1000, got {raw}"):
        Settings()
