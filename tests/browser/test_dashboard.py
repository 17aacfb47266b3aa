"""The dashboard in a real headless Chromium (Debian's `chromium` + `chromium-driver`).

The page loads from a worker, its charts draw, its numbers move while orders flow and,
once the flow stops, equal the API's; it says "stale" when its worker goes away and
recovers by itself when the worker is back. A screenshot is saved
(DASHBOARD_SCREENSHOT, default <tmp>/dashboard.png).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from app.load import run_load
from tests.integration.analytics_support import eventually
from tests.system import Worker

pytestmark = pytest.mark.integration


def value(browser: Any, test_id: str) -> str:
    """A tile's exact figure, read in one script call so a redraw cannot stale the handle."""
    found = browser.execute_script(
        "var e = document.querySelector('[data-testid=\"' + arguments[0] + '\"]');"
        " return e ? e.getAttribute('data-value') : null;",
        test_id,
    )
    return str(found or "")


def api_totals(api: httpx.Client) -> dict[str, Any]:
    """What the tiles show, from the API: sums over the same 15 one-minute windows."""
    windows = api.get("/analytics/summary", params={"window": "1m", "last": 14}).json()["windows"]
    orders = sum(w["orders_placed"] for w in windows)
    declined = sum(w["payments_declined"] for w in windows)
    payments = declined + sum(w["payments_captured"] for w in windows)
    return {
        "kpi-orders": str(orders),
        "kpi-revenue": str(sum(Decimal(w["revenue"]) for w in windows)),
        "kpi-cancelled": str(sum(w["orders_cancelled"] for w in windows)),
        "kpi-shipped": str(sum(w["orders_shipped"] for w in windows)),
        "kpi-decline": f"{declined / payments:.4f}" if payments else "",
    }


def test_dashboard_live(worker: Worker, browser: Any, tmp_path: Path) -> None:
    api = httpx.Client(base_url=worker.url, timeout=30)
    browser.get(f"{worker.url}/dashboard")
    assert "live analytics" in browser.title
    eventually(lambda: browser.execute_script("return window.dashboard.updates") > 0, 60, 0.5)
    # every chart drew a canvas
    for chart in ("chart-orders", "chart-revenue", "chart-decline"):
        assert browser.find_elements(By.CSS_SELECTOR, f'[data-testid="{chart}"] canvas')

    load = threading.Thread(
        target=lambda: asyncio.run(
            run_load([worker.url], 150, 15.0, 30, 10, seed=3, progress=False, max_in_flight=8)
        )
    )
    load.start()
    seen: list[int] = []

    def numbers_move() -> Any:
        seen.append(int(value(browser, "kpi-orders") or 0))
        return len(set(seen)) >= 3 or seen[-3:]

    eventually(numbers_move, 120, 1.0)
    load.join(timeout=180)

    def equal_to_api() -> Any:
        expected = api_totals(api)
        time.sleep(1.5)  # one more push
        shown = {key: value(browser, key) for key in expected}
        return (shown == expected and api_totals(api) == expected) or (shown, expected)

    eventually(equal_to_api, 120, 1.0)

    def top_skus_equal_to_api() -> Any:
        top = [
            s["sku"]
            for s in api.get("/analytics/top-skus", params={"limit": 10}).json()["by_quantity"]
        ]
        # one script call: the table is redrawn on every push, so element handles go stale
        shown = browser.execute_script(
            "return Array.from(document.querySelectorAll("
            "'[data-testid=\"top-skus\"] tbody tr[data-sku]')).map(function (r) {"
            " return r.getAttribute('data-sku'); })"
        )
        return shown == top or (shown, top)

    eventually(top_skus_equal_to_api, 30, 1.0)
    assert browser.execute_script(
        "return window.dashboard.charts.orders.data[1].some(function (v) { return v > 0; })"
    )
    assert int(value(browser, "h-processed")) > 0
    assert value(browser, "h-lag") != ""
    assert "live" in browser.find_element(By.ID, "status").text

    target = Path(os.environ.get("DASHBOARD_SCREENSHOT", str(tmp_path / "dashboard.png")))
    target.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(target))
    print(f"screenshot: {target}")

    # the worker goes away: the page says its figures are stale; back again: live again
    orders_before = value(browser, "kpi-orders")
    worker.stop()
    eventually(lambda: "stale" in browser.find_element(By.ID, "status").text, 30, 0.5)
    assert browser.find_element(By.ID, "stale").is_displayed()
    worker.start().wait_ready(timeout=240)
    eventually(lambda: "live" in browser.find_element(By.ID, "status").text, 120, 1.0)

    def orders_as_before() -> Any:
        # the restarted worker answers before its analytics table is fully recovered
        shown = value(browser, "kpi-orders")
        return (shown == orders_before == api_totals(api)["kpi-orders"]) or shown

    eventually(orders_as_before, 120, 1.0)


def test_operations_panel_shows_readers_workers_and_dead_letters(
    worker: Worker, browser: Any
) -> None:
    """The operations panel: lag per reader (every reader of /ops/lag), the worker with
    its partitions (those /ops/health says it owns) and state, no stalled reader, no
    open dead letter; the same figures as GET /ops/overview."""
    api = httpx.Client(base_url=worker.url, timeout=30)
    worker.wait_ready(timeout=240)
    browser.get(f"{worker.url}/dashboard")

    def shown() -> Any:
        return browser.execute_script(
            "var rows = function (id, attrs) { return Array.from(document.querySelectorAll("
            "'[data-testid=\"' + id + '\"] tbody tr')).map(function (r) {"
            " return attrs.map(function (a) { return r.getAttribute(a); }); }); };"
            " return {readers: rows('ops-readers', ['data-reader']).map(function (r) {"
            " return r[0]; }), workers: rows('ops-workers', ['data-worker', 'data-state',"
            " 'data-partitions'])};"
        )

    health = api.get("/ops/health").json()
    readers = sorted(api.get("/ops/lag").json()["readers"])
    partitions = ",".join(map(str, health["partitions"]))
    url = health["web"].rstrip("/")  # the worker's canonical URL: as the router names it

    def as_the_api_says() -> Any:
        now = shown()
        expected_workers = [[url, "running", partitions]]
        return (now["readers"] == readers and now["workers"] == expected_workers) or now

    eventually(as_the_api_says, 60, 0.5)
    assert value(browser, "ops-dead-letters") == "0"
    assert value(browser, "ops-stalled") == "0"
    overview = api.get("/ops/overview").json()
    assert sorted(overview["readers"]) == readers
    assert overview["workers"] == [
        {"url": url, "partitions": health["partitions"], "state": "running", "stalled": []}
    ]
