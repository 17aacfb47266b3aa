"""docs/openapi.json: the OpenAPI document a worker serves, committed for readers and clients.

    python -m web.openapi_file --write   # regenerate it from the routes
    python -m web.openapi_file --check   # exit 1 if it is not what a worker serves

The document is `web.openapi.build` over the routes the composition root wires
(`app.worker`, imported here only when asked: nothing starts), so the committed copy
and `GET /openapi.json` are the same text. `tests/unit/test_openapi_file.py` runs the
check in CI: a route, parameter or answer changed without `--write` fails there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from web.openapi import build

PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
WRITE_COMMAND = "python -m web.openapi_file --write"


def served() -> dict[str, Any]:
    """The document every worker serves at `GET /openapi.json`: our views, and faust's
    own (its index page), which it mounts when its web server starts."""
    import app.worker as worker  # the composition root: every view on the App

    worker.app.web.blueprints.apply(worker.app.web)  # once per process: faust keeps a flag
    return build(worker.app.web)


def dumps(document: dict[str, Any]) -> str:
    """Stable text: the document's own order (routes sorted by path), two-space indents."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What changed between two documents, by route and by schema: a reader's summary."""
    found = []
    for section, label in (("paths", "route"), ("components", "component")):
        before, after = recorded.get(section, {}), current.get(section, {})
        if section == "components":
            before, after = before.get("schemas", {}), after.get("schemas", {})
            label = "schema"
        found += [f"{label} {name} added" for name in sorted(set(after) - set(before))]
        found += [f"{label} {name} removed" for name in sorted(set(before) - set(after))]
        found += [
            f"{label} {name} changed"
            for name in sorted(set(before) & set(after))
            if before[name] != after[name]
        ]
    for key in sorted(set(recorded) | set(current)):
        if key not in ("paths", "components") and recorded.get(key) != current.get(key):
            found.append(f"{key} changed")
    return found


def check(path: Path = PATH, current: dict[str, Any] | None = None) -> list[str]:
    """Everything wrong with the committed document (empty: it is what a worker serves)."""
    document = served() if current is None else current
    try:
        text = path.read_text()
    except FileNotFoundError:
        return [f"{path.name} is missing: run `{WRITE_COMMAND}`"]
    if text == dumps(document):
        return []
    try:
        recorded = json.loads(text)
    except ValueError:
        recorded = {}
    changes = differences(recorded, document) or ["formatting"]
    return [f"{path.name} is out of date ({', '.join(changes)}): run `{WRITE_COMMAND}`"]


def write(path: Path = PATH, current: dict[str, Any] | None = None) -> None:
    path.write_text(dumps(served() if current is None else current))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web.openapi_file", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate docs/openapi.json")
    mode.add_argument("--check", action="store_true", help="fail if it is not current")
    args = parser.parse_args(argv)
    if args.write:
        write()
        print(f"wrote {PATH}")
        return 0
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
