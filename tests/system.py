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

FAILOVER_SESSION_TIMEOUT = "10"
"""KAFKA_SESSION_TIMEOUT for systems whose workers get SIGKILLed: the survivors (or the
restarted worker) take a dead worker's partitions only once its session times out, 30 s
by default; 10 s cuts about 20 s of waiting per kill (heartbeats still come every 3 s)."""

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "FAILOVER_SESSION_TIMEOUT",
    "ROOT",
    "System",
    "Worker",
    "bootstrap_servers",
    "ensure_broker",
    "free_port",
    "reachable",
    "read_values",
]
