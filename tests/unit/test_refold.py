"""The refold process of a rebuild (agents/refold.py): how it is found and how it fails.

Its fold over a real topic is exercised by tests/integration/test_rebuild.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from agents.refold import Counts, refold
from models.rebuilds import REBUILDABLE
from tables.rebuildable import REBUILDABLE_FOLDS, fold_named


def test_every_read_model_the_cli_offers_has_a_fold_the_refold_finds_by_name() -> None:
    assert set(REBUILDABLE_FOLDS) == set(REBUILDABLE)
    for make in REBUILDABLE_FOLDS.values():
        assert fold_named(make().name).name == make().name
    with pytest.raises(KeyError, match="no rebuildable fold named 'nope'"):
        fold_named("nope")


def test_a_failed_refold_is_an_error_that_says_why(tmp_path: Path) -> None:
    seen: list[Counts] = []

    async def progress(counts: Counts) -> None:
        seen.append(counts)

    with pytest.raises(RuntimeError) as failed:
        asyncio.run(refold("nope", 3, tmp_path / "p3.rebuild", {"t": 5}, progress))
    assert "the refold of nope partitions [3] exited 1" in str(failed.value)
    assert "no rebuildable fold named 'nope'" in str(failed.value)
    assert seen == []


def test_the_partitions_asked_for_together_share_one_process_per_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agents.refold.os.cpu_count", lambda: 2)

    async def progress(counts: Counts) -> None:
        raise AssertionError("no progress from a process that failed at once")

    async def three() -> list[BaseException | Counts]:
        return await asyncio.gather(
            *(refold("nope", p, tmp_path / f"p{p}", {"t": 5}, progress) for p in (3, 5, 7)),
            return_exceptions=True,
        )

    errors = [str(outcome) for outcome in asyncio.run(three())]
    assert "partitions [3, 7] exited 1" in errors[0]
    assert "partitions [5] exited 1" in errors[1]
    assert "partitions [3, 7] exited 1" in errors[2]


def test_the_refold_process_imports_nothing_of_the_worker() -> None:
    """It starts in a fraction of a second because it builds no App and no agents."""
    probe = (
        "import sys, agents.refold; "
        "print(sorted(m for m in sys.modules if m in ('faust', 'app.main', 'agents.engine')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
