"""The rooms of docs/ARCHITECTURE.md, held against the imports the code really has.

Read from the source with `ast` (nothing is imported), so a forbidden import fails here
by file and line, whatever imports it at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("models", "domain", "tables", "agents", "web", "app", "bench")
OURS = (*SHIPPED, "tests")

MAY_IMPORT: dict[str, set[str]] = {
    "models": {"models"},
    "domain": {"domain", "models"},
    "tables": {"tables", "domain", "models", "app"},
    "agents": {"agents", "tables", "domain", "models", "app"},
    "web": {"web", "agents", "tables", "domain", "models", "app"},
    "app": {"app", "models"},
    "bench": {"bench", "app", "domain", "models"},
}
"""What each room may import of ours (its own room included); the rest is forbidden."""

COMPOSITION_ROOT = "app/worker.py"
"""The one module that imports every agent and view: importing it builds the worker."""

PURE = ("models", "domain")
"""Rooms with no I/O: no Kafka, no faust, no storage, no web, no environment."""
IMPURE_LIBRARIES = {"faust", "aiokafka", "rocksdict", "aiohttp", "httpx", "mode", "os"}

PRIVATE_API_SEAM = "app/faust_clients.py"
"""The one module that reaches into faust's and aiokafka's private attributes."""


def sources(room: str) -> Iterator[Path]:
    yield from sorted((ROOT / room).rglob("*.py"))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


@pytest.mark.parametrize("room", SHIPPED)
def test_each_room_imports_only_the_rooms_below_it(room: str) -> None:
    wrong = []
    for path in sources(room):
        if path.relative_to(ROOT).as_posix() == COMPOSITION_ROOT:
            continue
        for line, module in imports(path):
            top = module.split(".")[0]
            if top in OURS and top not in MAY_IMPORT[room]:
                wrong.append(f"{where(path, line)} imports {module}")
    assert wrong == []


@pytest.mark.parametrize("room", PURE)
def test_the_domain_and_its_models_do_no_io(room: str) -> None:
    wrong = [
        f"{where(path, line)} imports {module}"
        for path in sources(room)
        for line, module in imports(path)
        if module.split(".")[0] in IMPURE_LIBRARIES
    ]
    assert wrong == []


def test_only_the_composition_root_imports_agents_and_views_into_app() -> None:
    root = ROOT / COMPOSITION_ROOT
    pulled = {module.split(".")[0] for _, module in imports(root)}
    assert {"agents", "web"} <= pulled  # it does wire them


def test_private_attributes_of_faust_and_aiokafka_are_reached_in_one_module() -> None:
    """`x._name` where x is not self, cls or super(): the seam's business only."""
    wrong = []
    for room in ("app", "agents", "web", "tables"):
        for path in sources(room):
            if path.relative_to(ROOT).as_posix() == PRIVATE_API_SEAM:
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                    continue
                if node.attr.startswith("__"):
                    continue
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Name) and f"{owner.id}.{node.attr}" == "os._exit":
                    continue  # the standard library's, documented
                if isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super":
                    continue
                wrong.append(f"{where(path, node.lineno)} reaches .{node.attr}")
    assert wrong == []


def test_nothing_shipped_imports_the_tests() -> None:
    wrong = [
        f"{where(path, line)} imports {module}"
        for room in SHIPPED
        for path in sources(room)
        for line, module in imports(path)
        if module.split(".")[0] == "tests"
    ]
    assert wrong == []


def http_statuses(path: Path) -> Iterator[int]:
    """Lines that give something an HTTP status: `status = 409`, `status=404`,
    `accepted_status: int = 201`."""
    for node in ast.walk(ast.parse(path.read_text())):
        named: list[tuple[str, ast.expr | None]] = []
        if isinstance(node, ast.Assign):
            named = [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            named = [(node.target.id, node.value)]
        elif isinstance(node, ast.keyword) and node.arg is not None:
            named = [(node.arg, node.value)]
        for name, value in named:
            if not (name.endswith("status") and isinstance(value, ast.Constant)):
                continue
            if isinstance(value.value, int) and 100 <= value.value < 600:
                yield value.lineno


@pytest.mark.parametrize("room", PURE)
def test_the_domain_and_its_models_keep_no_http_statuses(room: str) -> None:
    # a result says what happened; the web layer maps it to a status (web/http.py)
    wrong = [f"{where(path, line)}" for path in sources(room) for line in http_statuses(path)]
    assert wrong == []


def test_the_status_check_finds_a_status_given_in_the_domain(tmp_path: Path) -> None:
    offending = tmp_path / "errors.py"
    offending.write_text("class Gone:\n    status = 410\n\nanswer(status=404, code='x')\n")
    assert list(http_statuses(offending)) == [2, 4]
