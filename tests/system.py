"""Run the real system for tests: the launcher is bench/local_shop.py, shared with the
benches (which ship, so they cannot import tests/); this module names it for the tests."""

from __future__ import annotations

from bench.local_shop import (
    DEFAULT_BOOTSTRAP,
    ROOT,
    System,
    Worker,
    bootstrap_servers,
    ensure_broker,
    free_port,
    reachable,
    read_values,
)

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "ROOT",
    "System",
    "Worker",
    "bootstrap_servers",
    "ensure_broker",
    "free_port",
    "reachable",
    "read_values",
]
