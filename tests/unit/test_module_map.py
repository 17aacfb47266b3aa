"""docs/ARCHITECTURE.md's module map names every module of each room, and nothing that is gone.

A newcomer reads the architecture from that table: a module added without its line,
or a line left for a module removed, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
SECTION = "## Every module, room by room"
ROOMS = ("models", "domain", "tables", "agents", "web", "app", "bench")


def module_map() -> str:
    """The map's section: the doc's rooms table above it has rows per room as well."""
    text = ARCHITECTURE.read_text()
    assert SECTION in text, f"no '{SECTION}' section in docs/ARCHITECTURE.md"
    section = text.split(SECTION, 1)[1]
    return re.split(r"^## ", section, maxsplit=1, flags=re.M)[0]


def row(room: str) -> str:
    found = re.search(rf"^\| `{room}/` \|(.*)\|$", module_map(), re.M)
    assert found is not None, f"no row for {room}/ in docs/ARCHITECTURE.md's module map"
    return found.group(1)


@pytest.mark.parametrize("room", ROOMS)
def test_every_module_of_a_room_is_named_in_its_row(room: str) -> None:
    modules = sorted(p.name for p in (ROOT / room).glob("*.py") if p.name != "__init__.py")
    text = row(room)
    assert [m for m in modules if f"`{m}`" not in text] == []


@pytest.mark.parametrize("room", ROOMS)
def test_every_module_a_row_names_exists(room: str) -> None:
    named = re.findall(r"`([a-z_]+\.py)`", row(room))
    assert [m for m in named if not (ROOT / room / m).exists()] == []
