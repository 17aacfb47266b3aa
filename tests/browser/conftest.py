"""Headless Chromium (Debian's `chromium` + `chromium-driver`) for the browser tests;
every test here is skipped on a machine without them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system import System, Worker

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER):
        return
    why = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One browser per module, its console kept for `get_log("browser")`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="package")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One shop for the browser tests (its start is most of their time); a grace of
    10 minutes, so the dashboard's figures never drop orders as late."""
    shop = System(tmp_path_factory.mktemp("browser"), ANALYTICS_GRACE_SECONDS="600")
    yield shop
    shop.stop()


@pytest.fixture(scope="package")
def worker(system: System) -> Worker:
    return system.worker().wait_ready(timeout=240)
