"""Settings from the environment: a removed mode is refused at start, with the reason."""

from __future__ import annotations

import pytest

from app.settings import Settings


def test_exactly_once_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSING_GUARANTEE", "exactly_once")
    with pytest.raises(SystemExit, match="was removed: every effect already happens once"):
        Settings()


def test_at_least_once_is_the_only_guarantee_and_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROCESSING_GUARANTEE", raising=False)
    Settings()
    monkeypatch.setenv("PROCESSING_GUARANTEE", "at_least_once")
    Settings()
