"""docs/configuration.md is generated from the code and says what the code reads.

`python -m app.configuration_doc --check` runs the first check; this test keeps it in CI.
The others hold the declarations to the files: every variable the scripts (`${VAR`) and
the Python code (os.environ) read is declared, nothing declared is read by no one, and
only app/settings.py reads the worker's settings.
"""

from __future__ import annotations

import re
from pathlib import Path

from app import configuration_doc as doc

PRODUCT = ("app/", "agents/", "web/", "tables/", "domain/", "models/")
TEST_ONLY = {v.name for v in doc.TEST_VARIABLES}
SCRIPT_ONLY = {v.name for v in doc.SCRIPT_VARIABLES}


def test_the_page_matches_the_code() -> None:
    assert doc.PAGE.read_text() == doc.markdown(), f"run: {doc.WRITE_COMMAND}"


def test_the_command_line_check_passes_and_catches_a_stale_page(tmp_path: Path) -> None:
    assert doc.main(["--check"]) == 0
    page = tmp_path / "configuration.md"
    assert doc.main(["--check", "--page", str(page)]) == 1  # none yet
    assert doc.main(["--write", "--page", str(page)]) == 0
    assert doc.main(["--check", "--page", str(page)]) == 0
    page.write_text(page.read_text().replace("`8`", "`16`"))  # edited by hand
    assert doc.main(["--check", "--page", str(page)]) == 1


def test_every_variable_read_is_declared() -> None:
    assert doc.undeclared() == {}


def test_a_script_variable_not_listed_is_caught(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "new.sh").write_text('knob="${NEW_KNOB:-1}"; p="${PYTHON:-x}"\n')
    (tmp_path / "bench").mkdir()
    knob = "BENCH_KNOB"  # spelled out here, this file would read it
    (tmp_path / "bench" / "new.py").write_text(f'import os\nos.environ.get("{knob}", "")\n')
    assert doc.undeclared(tmp_path) == {
        "BENCH_KNOB": ["bench/new.py"],
        "NEW_KNOB": ["scripts/new.sh"],
    }


def test_every_script_variable_is_read_by_a_script() -> None:
    reads = doc.reads()
    for name in SCRIPT_ONLY:
        assert any(not path.endswith(".py") for path in reads.get(name, [])), name


def test_every_test_variable_is_read_by_a_test_or_the_fault_points() -> None:
    reads = doc.reads()
    for name in TEST_ONLY:
        assert reads.get(name), f"{name} is declared but nothing reads it"


def test_the_declared_defaults_are_the_scripts_defaults() -> None:
    """`${VAR:-default}` in a script: the page shows that default (a literal one)."""
    declared = {v.name: v.default for v in (*doc.SCRIPT_VARIABLES, *doc.TEST_VARIABLES)}
    for path in doc.files(doc.SCRIPTS, doc.ROOT):
        for name, default in re.findall(r"\$\{([A-Z][A-Z0-9_]*):-([^}$]+)\}", path.read_text()):
            if name in declared:
                assert f"`{default}`" in declared[name], (path.name, name, default)


def test_only_the_settings_module_reads_the_environment_for_the_product() -> None:
    """A worker's or the CLI's variable is read through app/settings.py (pydantic reads it,
    by its declaration); only the fault points, for tests, read theirs by name."""
    by_name = [
        (name, path)
        for name, paths in doc.reads().items()
        for path in paths
        if path.startswith(PRODUCT)
    ]
    assert by_name == [("SHOP_FAIL_FIRST", "app/faults.py"), ("SHOP_FAULT", "app/faults.py")]
