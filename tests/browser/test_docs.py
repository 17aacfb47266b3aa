"""The API docs (/docs) in a real headless Chromium: Swagger UI draws the worker's live
/openapi.json whole, from this origin only, with a clean console; "Try it out" reaches it.

A screenshot is saved (DOCS_SCREENSHOT, default <tmp>/docs.png).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.integration.analytics_support import eventually
from tests.system import Worker

pytestmark = pytest.mark.integration

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")

# Every operation drawn, as [METHOD, path]; the path from data-path, because the shown
# text has zero-width spaces put in for line breaking.
RENDERED = """
return Array.from(document.querySelectorAll('#docs .opblock')).map(function (block) {
  var method = block.querySelector('.opblock-summary-method');
  var path = block.querySelector('.opblock-summary-path');
  return [method ? method.textContent.trim() : null,
          path ? path.getAttribute('data-path') : null];
});
"""

# What Swagger UI found wrong with the document (fetch, parse, resolve), and what it shows
# (the loading box is empty while loading, and says "Failed to load API definition" after).
SPEC_ERRORS = """
var ui = window.docs && window.docs.ui;
return {
  errors: ui ? ui.errSelectors.allErrors().toJS() : [],
  shown: Array.from(document.querySelectorAll('#docs .errors-wrapper, #docs .loading-container'))
    .map(function (e) { return e.innerText.trim(); })
    .filter(function (text) { return text !== ''; })
};
"""


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """The document's operations as (METHOD, path), sorted."""
    return sorted(
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in METHODS
    )


def console_errors(browser: Any) -> list[dict[str, Any]]:
    """The console's errors since the last call (reading the log empties it)."""
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def foreign(browser: Any, origin: str) -> list[str]:
    """Everything the page loaded (the document, then each resource) from another origin."""
    urls: list[str] = browser.execute_script(
        "return [location.href].concat(performance.getEntriesByType('resource')"
        ".map(function (e) { return e.name; }));"
    )
    found: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        # data: and blob: URLs are made in the page, not fetched from anywhere
        if parts.scheme not in ("data", "blob") and f"{parts.scheme}://{parts.netloc}" != origin:
            found.append(url)
    return found


def test_docs_files(worker: Worker) -> None:
    """The page and what it loads are served with their types; the licenses are served too."""
    api = httpx.Client(base_url=worker.url, timeout=30)
    expected = {
        "/docs": "text/html",
        "/static/docs.js": "text/javascript",
        "/static/vendor/swagger-ui-bundle.js": "text/javascript",
        "/static/vendor/swagger-ui.css": "text/css",
        "/static/vendor/swagger-ui.LICENSE": "text/plain",
        "/static/vendor/swagger-ui.NOTICE": "text/plain",
        "/static/vendor/swagger-ui-bundle.js.LICENSE.txt": "text/plain",
    }
    for path, content_type in expected.items():
        response = api.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == f"{content_type}; charset=utf-8", path
        assert response.headers["x-content-type-options"] == "nosniff", path
    assert "Apache License" in api.get("/static/vendor/swagger-ui.LICENSE").text
    # source maps are not vendored, so nothing may point to one
    for path in ("/static/vendor/swagger-ui-bundle.js", "/static/vendor/swagger-ui.css"):
        assert "sourceMappingURL" not in api.get(path).text, path
    assert api.get("/static/vendor/swagger-ui-bundle.js.map").status_code == 404


def test_docs_render_the_live_document(worker: Worker, browser: Any, tmp_path: Path) -> None:
    api = httpx.Client(base_url=worker.url, timeout=30)
    response = api.get("/openapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    expected = operations(document)
    assert expected, "the document lists no operations"

    browser.get(f"{worker.url}/docs")
    assert "API docs" in browser.title

    def rendered_or_failed() -> Any:
        rendered = browser.execute_script(
            "return !!(window.docs && window.docs.rendered)"
            " && document.querySelectorAll('#docs .opblock').length > 0;"
        )
        problems = browser.execute_script(SPEC_ERRORS)
        return rendered or bool(problems["errors"] or problems["shown"]) or problems

    eventually(rendered_or_failed, 60, 0.5)
    # Swagger UI resolves an operation's $refs when it is opened: open them all, so that a
    # reference that does not resolve shows up as an error here
    browser.execute_script(
        "document.querySelectorAll('#docs .opblock:not(.is-open) .opblock-summary-control')"
        ".forEach(function (b) { b.click(); });"
    )

    def resolved_or_failed() -> Any:
        resolved = browser.execute_script(
            "var spec = window.docs.ui.specSelectors;"
            " return arguments[0].every(function (op) { return spec.specResolvedSubtree("
            "['paths', op[1], op[0].toLowerCase()]) !== undefined; });",
            expected,
        )
        return resolved or bool(browser.execute_script(SPEC_ERRORS)["errors"]) or "resolving"

    eventually(resolved_or_failed, 60, 0.5)
    # Swagger UI's own findings first, verbatim: they say what is wrong with the document
    problems = browser.execute_script(SPEC_ERRORS)
    assert problems == {"errors": [], "shown": []}, problems

    drawn = browser.execute_script(RENDERED)
    assert len(drawn) == len(expected), (len(drawn), len(expected))
    assert sorted((method, path) for method, path in drawn) == expected

    title = browser.find_element(By.CSS_SELECTOR, "#docs .info .title").text
    assert document["info"]["title"] in title, title
    assert document["info"]["version"] in title, title

    assert console_errors(browser) == []
    assert foreign(browser, worker.url) == []

    # "Try it out" (on from the start, tryItOutEnabled; opened above) on GET /health: sent
    # to this worker and its answer shown; 503 counts, the worker may not be ready yet
    block = browser.execute_script(
        "return Array.from(document.querySelectorAll('#docs .opblock.opblock-get')).find("
        "function (b) { return b.querySelector('.opblock-summary-path[data-path=\"/health\"]'); })"
        " || null;"
    )
    assert block is not None, "no GET /health drawn"
    eventually(lambda: bool(block.find_elements(By.CSS_SELECTOR, "button.execute")), 15, 0.25)
    block.find_element(By.CSS_SELECTOR, "button.execute").click()

    def status_shown() -> Any:
        shown = block.find_elements(
            By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
        )
        return bool(shown and shown[0].text.strip()) or "no response yet"

    eventually(status_shown, 30, 0.25)
    status = block.find_element(
        By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
    ).text.strip()
    assert status in ("200", "503"), status
    request_url = block.find_element(By.CSS_SELECTOR, ".request-url pre").text.strip()
    assert request_url == f"{worker.url}/health", request_url
    # deep linking: the opened operation is in the address
    assert "#/" in browser.current_url, browser.current_url

    # a 503 is logged by Chromium as a failed load: the only error allowed, and only then
    errors = console_errors(browser)
    if status == "503":
        health = f"{worker.url}/health"
        errors = [e for e in errors if not (health in e["message"] and "503" in e["message"])]
    assert errors == []
    assert foreign(browser, worker.url) == []

    print(f"{len(drawn)} operations drawn; Try it out on GET /health: {status}")
    browser.execute_script(
        "arguments[0].querySelector('.live-responses-table').scrollIntoView();", block
    )
    target = Path(os.environ.get("DOCS_SCREENSHOT", str(tmp_path / "docs.png")))
    target.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(target))
    print(f"screenshot: {target}")
