"""The rebuild's switch and catch-up rule, on plain dicts."""

from __future__ import annotations

from tables.rebuild import ahead_of, switch, version_of


def test_a_row_without_a_version_is_corrupt() -> None:
    assert version_of({"version": 3}) == 3
    assert version_of({"garbage": True}) == -1
    assert version_of(None) == -1


def test_live_rows_with_newer_versions_are_ahead_of_the_rebuild() -> None:
    rebuilt = {"a": {"version": 2}, "b": {"version": 5}}
    live = {"a": {"version": 3}, "b": {"version": 5}, "new": {"version": 1}, "bad": {"x": 1}}
    assert ahead_of(live.items(), rebuilt) == {"a", "new"}


def test_the_switch_makes_the_live_partition_equal_to_the_rebuild() -> None:
    live = {"same": {"version": 1}, "wrong": {"version": 2, "v": 0}, "ghost": {"version": 1}}
    rebuilt = {"same": {"version": 1}, "wrong": {"version": 2, "v": 9}, "lost": {"version": 4}}
    counts = switch(live, list(live.items()), rebuilt)
    assert live == rebuilt
    assert (counts.written, counts.deleted, counts.unchanged) == (2, 1, 1)
