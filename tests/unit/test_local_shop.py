"""What starts a broker stops it: a bench or test run that found none leaves none behind."""

from __future__ import annotations

from typing import Any

import pytest

from bench import local_shop


def test_a_broker_started_for_a_run_is_stopped_when_the_run_exits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []
    at_exit: list[Any] = []
    monkeypatch.setattr(local_shop, "reachable", lambda bootstrap: False)
    monkeypatch.setattr(local_shop.subprocess, "run", lambda argv, **kw: calls.append(argv))
    monkeypatch.setattr(local_shop.atexit, "register", lambda f, *a: at_exit.append((f, a)))

    local_shop.ensure_broker()
    assert [argv[-1] for argv in calls] == ["start"]
    [(stop, args)] = at_exit
    stop(*args)
    assert [argv[-1] for argv in calls] == ["start", "stop"]


def test_a_broker_that_answers_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_shop, "reachable", lambda bootstrap: True)
    monkeypatch.setattr(local_shop.subprocess, "run", lambda *a, **kw: pytest.fail("ran"))
    monkeypatch.setattr(local_shop.atexit, "register", lambda *a: pytest.fail("registered"))
    assert local_shop.ensure_broker() == local_shop.bootstrap_servers()
