"""`make help` lists every Makefile target with its `##` comment, and every target has one."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
TARGET = re.compile(r"^([A-Za-z0-9_-]+):(?!=)(.*)$", re.MULTILINE)


def targets() -> dict[str, str]:
    """Every target of the Makefile -> the rest of its line."""
    return dict(TARGET.findall((PROJECT / "Makefile").read_text()))


def test_every_target_says_what_it_does() -> None:
    found = targets()
    assert {"help", "start", "test", "lint", "clean"} <= set(found)
    undocumented = [name for name, rest in found.items() if "## " not in rest]
    assert not undocumented, f"targets without a `## what it does` comment: {undocumented}"


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_help_lists_every_target_with_its_comment() -> None:
    run = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    listed = {line.split()[0]: " ".join(line.split()[1:]) for line in run.stdout.splitlines()}
    for name, rest in targets().items():
        comment = rest.split("## ", 1)[1].strip()
        assert listed.get(name) == " ".join(comment.split()), name
    assert list(listed) == list(targets())  # in the Makefile's order


def test_help_is_what_a_bare_make_runs() -> None:
    assert next(iter(targets())) == "help"
