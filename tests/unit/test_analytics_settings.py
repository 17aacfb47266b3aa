"""The analytics windows are settings: read and checked in app/settings.py, each bad value
refused at start with the reason (the domain's Config only says which sizes cannot work)."""

from __future__ import annotations

import pytest

from app.settings import AnalyticsSettings, Settings
from domain.analytics import Config

NAMES = (
    "ANALYTICS_WINDOW_SECONDS",
    "ANALYTICS_LIVE_WINDOW_SECONDS",
    "ANALYTICS_HOP_SIZE_SECONDS",
    "ANALYTICS_HOP_STEP_SECONDS",
    "ANALYTICS_GRACE_SECONDS",
    "ANALYTICS_RETENTION_SECONDS",
)


@pytest.fixture(autouse=True)
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_the_defaults_are_the_config_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_GRACE_SECONDS", "")  # empty: the default
    assert AnalyticsSettings().checked(Config) == Config()
    assert Settings().analytics == AnalyticsSettings()


def test_each_window_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in zip(NAMES, ("120", "15", "600", "120", "45", "7200"), strict=True):
        monkeypatch.setenv(name, value)
    assert AnalyticsSettings().checked(Config) == Config(
        window=120, live_window=15, hop_size=600, hop_step=120, grace=45, retention=7200
    )


@pytest.mark.parametrize("raw", ["0", "-5", "1.5", "ten"])
def test_a_window_not_a_positive_whole_number_stops_the_worker(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("ANALYTICS_GRACE_SECONDS", raw)
    message = f"setting ANALYTICS_GRACE_SECONDS must be an integer of at least 1, got {raw!r}"
    with pytest.raises(SystemExit) as stop:
        Settings()
    assert str(stop.value) == message


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ANALYTICS_HOP_STEP_SECONDS": "70"},
            "ANALYTICS_HOP_SIZE_SECONDS must be a multiple of the hop step",
        ),
        (
            {"ANALYTICS_GRACE_SECONDS": "60", "ANALYTICS_RETENTION_SECONDS": "30"},
            "ANALYTICS_RETENTION_SECONDS must be at least the grace period",
        ),
        ({"ANALYTICS_LIVE_WINDOW_SECONDS": "60"}, "the two tumbling windows must differ in size"),
    ],
)
def test_windows_that_cannot_work_together_stop_the_worker_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    windows = Settings().analytics  # each is a positive number: read
    with pytest.raises(SystemExit) as stop:
        windows.checked(Config)
    assert str(stop.value) == message


def test_the_handler_retries_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HANDLER_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("HANDLER_BACKOFF_SECONDS", raising=False)
    assert (Settings().handler_max_attempts, Settings().handler_backoff_seconds) == (4, 0.2)
    monkeypatch.setenv("HANDLER_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("HANDLER_BACKOFF_SECONDS", "0.05")
    assert (Settings().handler_max_attempts, Settings().handler_backoff_seconds) == (2, 0.05)
    monkeypatch.setenv("HANDLER_MAX_ATTEMPTS", "many")
    with pytest.raises(SystemExit, match="HANDLER_MAX_ATTEMPTS must be an integer"):
        Settings()
