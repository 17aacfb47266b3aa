"""Run the real system for tests: the launcher is bench/local_shop.py, shared with the
benches (which ship, so they cannot import tests/); this module names it for the tests."""

from __future__ import annotations

import os
from pathlib import Path

from bench import local_shop
from bench.local_shop import (
    DEFAULT_BOOTSTRAP,
    ROOT,
    Worker,
    bootstrap_servers,
    ensure_broker,
    free_port,
    reachable,
    read_values,
)


class System(local_shop.System):
    """The benches' system, folding each partition once (no warm standbys: two workers
    would fold every partition twice, CPU the tests do not need) unless a test or the
    environment asks for SHOP_STANDBY_REPLICAS."""

    def __init__(self, workdir: Path, partitions: int = 8, **env: str) -> None:
        env.setdefault("SHOP_STANDBY_REPLICAS", os.environ.get("SHOP_STANDBY_REPLICAS", "0"))
        super().__init__(workdir, partitions, **env)


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
