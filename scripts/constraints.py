"""Write constraints.txt from the working venv: the installed version of every
distribution the project needs, that is its dependencies and its `dev` extra's, and
theirs, recursively (what `pip freeze --exclude-editable` lists, less what is in the
venv for other reasons: pip itself, tools installed by hand, the `bench` extra's
profiler).

    .venv/bin/python scripts/constraints.py      (make constraints)

Run it after changing a dependency in pyproject.toml and installing it; pip then
installs exactly these versions wherever the project is installed with
`-c constraints.txt`: scripts/bootstrap.sh (CI, `make test`) and the Dockerfile. The
`bench` extra is left out: it goes in its own venv (`make bench-peers`), not this one.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("dev",)
HEADER = """\
# The exact versions the project is installed with (pip install -c constraints.txt):
# scripts/bootstrap.sh (CI, make test) and the Dockerfile. Generated from the working
# venv by scripts/constraints.py (make constraints): do not edit by hand.
"""


def applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    """Whether a requirement holds here, for a distribution asked for with `extras`."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def project_requirements(pyproject: Path) -> list[Requirement]:
    """The dependencies and those of EXTRAS; an extra naming the project itself
    (`shop[otel]`) brings the lines of the extras it names."""
    project = tomllib.loads(pyproject.read_text())["project"]
    own, optional = canonicalize_name(project["name"]), project["optional-dependencies"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    extras, done = list(EXTRAS), set[str]()
    while extras:
        extra = extras.pop()
        if extra in done:
            continue
        done.add(extra)
        for requirement in map(Requirement, optional[extra]):
            if canonicalize_name(requirement.name) == own:
                extras += requirement.extras
            else:
                requirements.append(requirement)
    return requirements


def pins(requirements: list[Requirement]) -> dict[str, str]:
    """Canonical name -> `Name==version` of every installed distribution the
    requirements need, directly or not. Fails naming what is missing or does not
    satisfy its requirement: the venv must hold what it is pinning."""
    found: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(requirement, frozenset[str]()) for requirement in requirements]
    problems: list[str] = []
    while pending:
        requirement, asked_with = pending.pop()
        if not applies(requirement, asked_with):
            continue
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras)
        try:
            installed = distribution(requirement.name)
        except PackageNotFoundError:
            problems.append(f"{requirement} is not installed")
            continue
        version = installed.version
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} is not satisfied by the installed {version}")
        found[name] = f"{installed.metadata['Name']}=={version}"
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        pending += [(Requirement(line), extras) for line in installed.requires or []]
    if problems:
        raise SystemExit("constraints: " + "; ".join(sorted(set(problems))))
    return found


def main() -> int:
    found = pins(project_requirements(ROOT / "pyproject.toml"))
    target = ROOT / "constraints.txt"
    target.write_text(HEADER + "".join(f"{found[name]}\n" for name in sorted(found)))
    print(f"constraints: {len(found)} pins written to {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
