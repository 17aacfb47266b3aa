"""CHANGELOG.md names the current schema version of every event type, and every older
version the upcasters read, as the code's registry declares them: a new event type or
a new version added without its line fails here."""

from __future__ import annotations

import re
from pathlib import Path

from models.upcasting import CURRENT_VERSIONS, UPCASTERS

CHANGELOG = Path(__file__).resolve().parents[2] / "CHANGELOG.md"
ROW = re.compile(r"^\| `(?P<type>\w+)` \| v(?P<current>\d+) \|(?P<older>.*)\|$", re.M)


def rows() -> dict[str, tuple[int, str]]:
    section = CHANGELOG.read_text().split("## Event schema versions", 1)
    assert len(section) == 2, "CHANGELOG.md has no '## Event schema versions' section"
    table = re.split(r"^## ", section[1], maxsplit=1, flags=re.M)[0]
    found = [(m["type"], int(m["current"]), m["older"]) for m in ROW.finditer(table)]
    assert len({name for name, _, _ in found}) == len(found), "an event type listed twice"
    return {name: (current, older) for name, current, older in found}


def test_every_event_type_is_listed_at_its_current_version() -> None:
    listed = {name: current for name, (current, _) in rows().items()}
    assert listed == CURRENT_VERSIONS


def test_every_older_version_read_through_an_upcaster_is_named() -> None:
    table = rows()
    missing = [
        f"{event_type} v{version}"
        for event_type, version in UPCASTERS
        if not re.search(rf"\bv{version}\b", table[event_type][1])
    ]
    assert missing == []


def test_a_type_without_upcasters_lists_no_older_version() -> None:
    upcast = {event_type for event_type, _ in UPCASTERS}
    claimed = [name for name, (_, older) in rows().items() if name not in upcast and older.strip()]
    assert claimed == []
