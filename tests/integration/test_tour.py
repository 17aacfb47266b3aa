"""The README's five-minute tour, run as written against a live worker.

Each step of the tour is a `<!-- tour: STATUS -->` comment, a bash block (one command)
and the block of the answer shown under it. The command runs through bash and curl
with only the worker's address rewritten; curl reports the HTTP status on stderr. A
JSON answer matches when every key shown is in the worker's answer with the value
shown (`"…"` matches any value; keys not shown are not checked); a list matches item
by item, or, when it holds `"…"`, when the items shown appear in that order among
others. Any other answer is compared line for line. So a command, a status or an
answer in the README that drifts from what the worker does fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from tests.system import ROOT, Worker

README = ROOT / "README.md"
README_ADDRESS = "localhost:6066"
ANY = "…"
READ_RETRY_SECONDS = 15.0
"""A read may trail the write it follows (a read model folds up to FOLD_FOLLOW_WAIT_MS
behind the log): a GET is asked again until it matches, up to this long."""

STEP = re.compile(
    r"<!-- tour: (?P<status>\d{3}) -->\n```bash\n(?P<command>.*?)\n```\n```(?P<lang>\w*)\n"
    r"(?P<answer>.*?)\n```",
    re.S,
)


@dataclass(frozen=True)
class Step:
    status: int
    command: str
    lang: str
    answer: str

    @property
    def reads(self) -> bool:
        """A GET or HEAD: safe to ask again."""
        return re.search(r"(-X\s*POST|-XPOST|\s-d\s)", self.command) is None


def tour(text: str) -> list[Step]:
    return [
        Step(int(m["status"]), m["command"], m["lang"], m["answer"]) for m in STEP.finditer(text)
    ]


def mismatches(shown: Any, actual: Any, path: str = "$") -> list[str]:
    """Where `actual` departs from what the README shows (empty: it matches)."""
    if shown == ANY:
        return []
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        found = []
        for key, value in shown.items():
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            else:
                found += mismatches(value, actual[key], f"{path}.{key}")
        return found
    if isinstance(shown, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        items = [item for item in shown if item != ANY]
        if len(items) == len(shown):  # no "…": item by item
            if len(shown) != len(actual):
                return [f"{path}: {len(actual)} items, the README shows {len(shown)}"]
            return [
                problem
                for n, (s, a) in enumerate(zip(shown, actual, strict=True))
                for problem in mismatches(s, a, f"{path}[{n}]")
            ]
        rest = iter(enumerate(actual))  # in order, others between them
        for item in items:
            if not any(not mismatches(item, a) for _, a in rest):
                return [f"{path}: no {item!r} in order in {actual!r}"]
        return []
    if shown != actual:
        return [f"{path}: {actual!r}, the README shows {shown!r}"]
    return []


def run(step: Step, address: str) -> tuple[int, str]:
    """The step's command, as written, against `address`: (HTTP status, stdout)."""
    command = step.command.replace(README_ADDRESS, address)
    command = re.sub(r"\bcurl\b", "curl -w '%{stderr}%{http_code}'", command)
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    status = re.search(r"(\d{3})\s*$", done.stderr)
    assert status is not None, f"no HTTP status from {command!r}: {done.stderr!r}"
    return int(status.group(1)), done.stdout


def problems(step: Step, status: int, output: str) -> list[str]:
    found = [] if status == step.status else [f"status {status}, the README shows {step.status}"]
    if step.lang == "json":
        try:
            actual = json.loads(output)
        except ValueError:
            return [*found, f"not JSON: {output[:300]!r}"]
        found += mismatches(json.loads(step.answer), actual)
    elif output.strip().splitlines() != step.answer.strip().splitlines():
        found.append(f"{output.strip()!r}, the README shows {step.answer.strip()!r}")
    return found


def test_the_tour_is_in_the_readme_and_walks_the_newcomers_path() -> None:
    steps = tour(README.read_text())
    commands = " ".join(step.command for step in steps)
    for route in (
        "/accounts -d",
        "/accounts/alice/deposits",
        "/products/MUG-1/stock",
        "/orders -d",
        "/orders/order-1?min_version=",
        "/orders/order-1/timeline",
        "/dashboard",
        "/docs",
    ):
        assert route in commands, f"the tour no longer runs {route}"
    assert all(step.answer.strip() for step in steps)
    assert README.read_text().count("<!-- tour:") == len(steps), "a marker without its blocks"


def test_a_drifted_answer_is_caught() -> None:
    shown = {"status": "shipped", "steps": [{"e": "A"}, ANY, {"e": "C"}], "id": ANY}
    assert (
        mismatches(
            shown, {"status": "shipped", "steps": [{"e": "A"}, {"e": "B"}, {"e": "C"}], "id": 7}
        )
        == []
    )
    assert mismatches(shown, {"status": "paid", "steps": [{"e": "A"}, {"e": "C"}], "id": 1})
    assert mismatches(shown, {"status": "shipped", "steps": [{"e": "C"}, {"e": "A"}], "id": 1})
    assert mismatches(shown, {"status": "shipped", "steps": [{"e": "A"}, {"e": "C"}]})
    assert mismatches({"events": [{"v": 1}]}, {"events": [{"v": 1}, {"v": 2}]})


def test_the_tour_answers_what_the_readme_shows(worker: Worker) -> None:
    assert shutil.which("curl") is not None, "the tour's commands need curl"
    address = worker.url.removeprefix("http://")
    for step in tour(README.read_text()):
        deadline = time.monotonic() + (READ_RETRY_SECONDS if step.reads else 0)
        while True:
            status, output = run(step, address)
            found = problems(step, status, output)
            if not found or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        assert found == [], (
            f"{step.command}\n  " + "\n  ".join(found) + f"\n  answer: {output[:2000]}"
        )


def test_the_tour_asks_the_worker_make_start_serves_first() -> None:
    start = (ROOT / "scripts" / "start.sh").read_text()
    assert 'port_1="${WEB_PORT_1:-6066}"' in start
    assert all(README_ADDRESS in step.command for step in tour(README.read_text()))
