"""What starts a broker stops it: a bench or test run that found none leaves none behind; a
worker's port stays its own across a restart."""

from __future__ import annotations

import socket
from typing import Any
from unittest import mock

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


def test_a_worker_port_is_free_and_outside_the_range_connections_are_given() -> None:
    # a port of the ephemeral range can be taken by a client's connection while a worker
    # is down, and the worker restarted on it then fails to bind
    ephemeral = local_shop.ephemeral_ports()
    ports = {local_shop.free_port() for _ in range(20)}
    assert not any(port in ephemeral for port in ports), (ports, ephemeral)
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_an_unreadable_port_range_is_linuxs_default() -> None:
    with mock.patch.object(local_shop.Path, "read_text", side_effect=OSError):
        assert local_shop.ephemeral_ports() == range(32768, 61000)
