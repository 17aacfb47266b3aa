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
    assert "the refold of nope partition 3 exited 1" in str(failed.value)
    assert "no rebuildable fold named 'nope'" in str(failed.value)
    assert seen == []


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
