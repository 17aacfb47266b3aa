"""constraints.txt pins what pyproject.toml asks for: a dependency added or its bounds
changed without `make constraints` (scripts/constraints.py) fails here, not as an
unpinned or unsatisfiable install in CI or in the image."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _constraints_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("constraints", ROOT / "scripts/constraints.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pins() -> dict[str, str]:
    """Canonical name -> pinned version; every line is `name==version`, once."""
    found: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, separator, version = line.partition("==")
        assert separator and version and " " not in line, f"not an exact pin: {line!r}"
        key = canonicalize_name(name)
        assert key not in found, f"{name} pinned twice"
        found[key] = version
    return found


def required() -> list[Requirement]:
    """What scripts/bootstrap.sh installs: the dependencies and the `dev` extra's (an
    extra of the project itself, `shop[otel]`, brings its own lines)."""
    requirements: list[Requirement] = _constraints_script().project_requirements(
        ROOT / "pyproject.toml"
    )
    return requirements


def test_every_dependency_is_pinned_within_its_bounds() -> None:
    pinned = pins()
    missing = [str(r) for r in required() if canonicalize_name(r.name) not in pinned]
    assert missing == [], "not in constraints.txt: run `make constraints`"
    outside = [
        f"{r} (pinned {pinned[canonicalize_name(r.name)]})"
        for r in required()
        if not r.specifier.contains(pinned[canonicalize_name(r.name)], prereleases=True)
    ]
    assert outside == [], "pinned outside pyproject.toml's bounds: run `make constraints`"


def test_the_project_itself_is_not_pinned() -> None:
    # a pin of the project would make pip refuse to install the checkout's own version
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert canonicalize_name(name) not in pins()
