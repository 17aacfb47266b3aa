"""docs/openapi.json is the document a worker serves: regenerated with
`python -m web.openapi_file --write`, checked here as docs/contracts.json is."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from web import openapi_file


@pytest.fixture(scope="module")
def served() -> dict[str, Any]:
    return openapi_file.served()


def test_the_committed_document_is_the_one_a_worker_serves(served: dict[str, Any]) -> None:
    assert openapi_file.check(current=served) == [], f"run: {openapi_file.WRITE_COMMAND}"


def test_it_lists_faust_s_own_route_as_a_worker_serves_it(served: dict[str, Any]) -> None:
    # mounted when faust's web server starts: the document served has it
    assert set(served["paths"]["/"]) == {"get"}


def test_the_command_line_check_passes() -> None:
    assert openapi_file.main(["--check"]) == 0


def test_a_changed_route_is_caught_and_named(tmp_path: Path, served: dict[str, Any]) -> None:
    path = tmp_path / "openapi.json"
    openapi_file.write(path, served)
    assert openapi_file.check(path, served) == []
    changed = copy.deepcopy(served)
    changed["paths"]["/orders/{order_id}"]["get"]["summary"] = "Read an order, renamed"
    del changed["paths"]["/docs"]
    problems = openapi_file.check(path, changed)
    assert len(problems) == 1, problems
    assert "route /orders/{order_id} changed" in problems[0]
    assert "route /docs removed" in problems[0]
    assert openapi_file.WRITE_COMMAND in problems[0]


def test_a_hand_edit_is_caught(tmp_path: Path, served: dict[str, Any]) -> None:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(served))  # same content, other formatting
    assert openapi_file.check(path, served) == [
        f"openapi.json is out of date (formatting): run `{openapi_file.WRITE_COMMAND}`"
    ]
    path.unlink()
    assert "missing" in openapi_file.check(path, served)[0]
