"""A table stand-in for unit tests: a dict that records what its changelog would carry."""

from __future__ import annotations

from typing import Any


class ChangelogDict(dict[str, Any]):
    """Records every write by key, and every deletion as "-key" (a tombstone)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.writes.append(f"-{key}")
        super().__delitem__(key)
