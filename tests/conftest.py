"""Fixtures: a real broker for integration tests, and isolated running systems."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.system import System, Worker, ensure_broker


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return ensure_broker()


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    shop = System(tmp_path_factory.mktemp("shop"))
    yield shop
    shop.stop()


@pytest.fixture(scope="module")
def worker(system: System) -> Worker:
    """One ready worker of the module's system."""
    return system.worker().wait_ready()
