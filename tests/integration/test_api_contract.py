"""The HTTP contract, checked against a live worker on the real broker.

`GET /openapi.json` documents every route; schemathesis then sends what the document
allows (and what it forbids) to every operation, following its links (open an
account, then deposit to it; place an order, then read it), and checks each answer:
no server error, the status and content type declared, the body as its schema says,
invalid input refused, write endpoints refused without the bearer token.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from tests.system import System, Worker

pytestmark = pytest.mark.integration

TOKEN = "contract-token"
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261130"))
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
NEVER_ENDING = "/analytics/stream"
"""Server-Sent Events: one response that never ends, so no fuzzer can read it whole; its
declared content type is checked by `test_the_stream_is_what_the_document_says`."""


@pytest.fixture(scope="module")
def worker(system: System) -> Worker:
    system.env.update(API_TOKEN=TOKEN, MIN_VERSION_WAIT="0.3")
    return system.worker().wait_ready(timeout=240)


def document(worker: Worker) -> dict:
    response = httpx.get(f"{worker.url}/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_document_is_valid_openapi_and_lists_every_route(worker: Worker) -> None:
    spec = document(worker)
    validate(spec)  # raises with the first problem
    assert spec["openapi"].startswith("3.1")
    assert "x-undocumented" not in spec, spec["x-undocumented"]
    operations = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert ("POST", "/accounts") in operations
    assert ("GET", "/openapi.json") in operations
    assert len(operations) >= 30


def test_every_route_answers_as_its_operation_says_when_sent_nothing(worker: Worker) -> None:
    """A route the document lists exists on the server: no router 404/405 for it."""
    spec = document(worker)
    for path, item in spec["paths"].items():
        for method in item:
            url = worker.url + re.sub(r"\{[^}]+\}", "x1", path)
            if path == NEVER_ENDING:
                continue
            response = httpx.request(method, url, timeout=15)
            declared = set(item[method]["responses"])
            assert str(response.status_code) in declared, (method, path, response.text[:300])
            if response.status_code >= 400:
                assert response.headers["content-type"].startswith("application/json")
                assert {"error", "reason"} <= set(response.json()), response.text


def test_unknown_routes_and_methods_get_the_error_envelope(worker: Worker) -> None:
    missing = httpx.get(f"{worker.url}/no/such/route", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = httpx.delete(f"{worker.url}/health", timeout=10)
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]


def test_the_stream_is_what_the_document_says(worker: Worker) -> None:
    declared = document(worker)["paths"][NEVER_ENDING]["get"]["responses"]["200"]["content"]
    with httpx.stream("GET", worker.url + NEVER_ENDING, timeout=15) as response:
        assert response.status_code == 200
        media = response.headers["content-type"].split(";")[0]
        assert media in declared
        first = next(response.iter_text())
        assert first.startswith("retry:")


def test_schemathesis_finds_nothing(worker: Worker, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{worker.url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--seed",
        str(SEED),
        "--max-examples",
        str(EXAMPLES),
        "--exclude-path",
        NEVER_ENDING,
        "--request-timeout",
        "20",
        "--max-failures",
        "10",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    # cwd: schemathesis keeps a cache (.schemathesis/) where it runs
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    print(run.stdout[-6000:], run.stderr[-2000:])
    assert run.returncode == 0, "schemathesis found problems (see the output above)"
    counted = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert counted is not None, "no count of test cases in schemathesis's summary"
    generated, passed = int(counted[1]), int(counted[2])
    print(json.dumps({"schemathesis_cases": generated, "passed": passed, "seed": SEED}))
    # a run that generated little has tested little: the document must yield real cases
    assert generated >= 10 * len(document(worker)["paths"])
