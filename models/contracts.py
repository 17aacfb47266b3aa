"""Event contracts: the JSON Schema of every event type and version, from the models.

Each event payload model names its `event_type` and `schema_version`; earlier
versions that are still read (through upcasters) keep a model of their own
(`models.orders_history`). The contracts are keyed context -> event type ->
schema version, with the schema of the payload as it is written on the topic
(pydantic's serialization mode: money is a string), and the envelope's schema.

They are served at `GET /contracts` and written to `docs/contracts.json` and
`docs/CONTRACTS.md`, which are append-only for versions: a version once
recorded keeps its schema there even after its model is gone. The check fails
when the doc is not what the models generate, and when a recorded version's
schema changed: a changed payload needs a new schema_version (and an upcaster).

    python -m models.contracts --write   # regenerate the doc (refuses an unversioned change)
    python -m models.contracts --check   # exit 1 if the doc and the models disagree
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from models.contexts import CONTEXTS
from models.envelope import EventEnvelope

FORMAT = 1
DOCS = Path(__file__).resolve().parent.parent / "docs"
JSON_PATH = DOCS / "contracts.json"
MARKDOWN_PATH = DOCS / "CONTRACTS.md"
WRITE_COMMAND = "python -m models.contracts --write"
CHECK_COMMAND = "python -m models.contracts --check"

HISTORICAL_EVENTS: tuple[type[BaseModel], ...] = tuple(
    model for context in CONTEXTS for model in context.history
)
"""Every earlier version of an event type that still has a model, of every context."""

Models = dict[str, dict[str, dict[int, type[BaseModel]]]]
"""context -> event type -> schema version -> payload model."""
Contracts = dict[str, Any]


def event_models(extra: tuple[type[BaseModel], ...] = HISTORICAL_EVENTS) -> Models:
    """Every event model: the contexts' current ones and the historical ones."""
    models: Models = {}
    context_of: dict[str, str] = {}
    for context in CONTEXTS:
        events = models.setdefault(context.name, {})
        for event_type, model in context.events.items():
            events[event_type] = {_version(model): model}
            context_of[event_type] = context.name
    for model in extra:
        event_type = _event_type(model)
        models[context_of[event_type]][event_type][_version(model)] = model
    return models


def _event_type(model: type[BaseModel]) -> str:
    return str(model.event_type)  # type: ignore[attr-defined]


def _version(model: type[BaseModel]) -> int:
    return int(model.schema_version)  # type: ignore[attr-defined]


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The payload's JSON Schema as written on the topic."""
    return model.model_json_schema(mode="serialization")


def generate(models: Models | None = None) -> Contracts:
    """The contracts document the models define."""
    models = event_models() if models is None else models
    topics = {context.name: context.event_topic for context in CONTEXTS}
    contexts: dict[str, Any] = {}
    for context, events in models.items():
        contexts[context] = {
            "topic": topics.get(context, f"{context}.events"),
            "events": {
                event_type: {
                    "current_version": max(versions),
                    "versions": {
                        str(version): schema_of(model)
                        for version, model in sorted(versions.items())
                    },
                }
                for event_type, versions in sorted(events.items())
            },
        }
    return {
        "format": FORMAT,
        "generated_by": WRITE_COMMAND,
        "envelope": EventEnvelope.model_json_schema(mode="serialization"),
        "contexts": contexts,
    }


@cache
def current() -> Contracts:
    """What `GET /contracts` serves: the models' contracts, and any older version
    that only the doc still records."""
    return merge(load(), generate())


def find(contracts: Contracts, event_type: str) -> tuple[str, dict[str, Any]] | None:
    """(context, entry) of an event type, or None."""
    for context, entry in contracts["contexts"].items():
        if event_type in entry["events"]:
            return context, entry["events"][event_type]
    return None


def index(contracts: Contracts) -> list[dict[str, Any]]:
    """One row per event type: context, topic, current version, recorded versions."""
    return [
        {
            "event_type": event_type,
            "context": context,
            "topic": entry["topic"],
            "current_version": event["current_version"],
            "versions": sorted(int(v) for v in event["versions"]),
        }
        for context, entry in contracts["contexts"].items()
        for event_type, event in entry["events"].items()
    ]


# --- comparing ---------------------------------------------------------------------

_ANNOTATIONS = ("title", "description", "examples")
_NAMED_SCHEMAS = ("properties", "$defs", "definitions", "patternProperties")


def normalized(schema: Any) -> Any:
    """The schema's meaning: references inlined, annotations (titles, descriptions)
    dropped, `required` sorted; so renaming a nested class or fixing a docstring is
    not a contract change, while adding, removing or retyping a field is."""
    defs = schema.get("$defs", {}) if isinstance(schema, dict) else {}
    return _strip(_inline(schema, defs, 0))


def _inline(node: Any, defs: Mapping[str, Any], depth: int) -> Any:
    if depth > 32:
        raise ValueError("schema references nest too deep (recursive model?)")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline(defs[ref.removeprefix("#/$defs/")], defs, depth + 1)
            rest = {k: _inline(v, defs, depth) for k, v in node.items() if k != "$ref"}
            return {**target, **rest}
        return {k: _inline(v, defs, depth) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(item, defs, depth) for item in node]
    return node


def _strip(node: Any, named: bool = False) -> Any:
    if isinstance(node, dict):
        if named:  # keys are field names, each value a schema
            return {k: _strip(v) for k, v in node.items()}
        out = {}
        for key, value in node.items():
            if key in _ANNOTATIONS:
                continue
            if key == "required" and isinstance(value, list):
                out[key] = sorted(value)
            else:
                out[key] = _strip(value, named=key in _NAMED_SCHEMAS)
        return out
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def merge(recorded: Contracts | None, generated: Contracts) -> Contracts:
    """The doc to write: what the models generate, plus every version (and event type)
    the doc recorded that has no model any more."""
    merged = copy.deepcopy(generated)
    if not recorded:
        return merged
    for context, entry in recorded.get("contexts", {}).items():
        target = merged["contexts"].setdefault(context, {"topic": entry["topic"], "events": {}})
        for event_type, event in entry["events"].items():
            if find(merged, event_type) is None:
                target["events"][event_type] = copy.deepcopy(event)
                continue
            _, known = find(merged, event_type)  # type: ignore[misc]
            for version, schema in event["versions"].items():
                known["versions"].setdefault(version, copy.deepcopy(schema))
            known["versions"] = dict(sorted(known["versions"].items(), key=lambda kv: int(kv[0])))
        target["events"] = dict(sorted(target["events"].items()))
    return merged


def unversioned_changes(recorded: Contracts | None, generated: Contracts) -> list[str]:
    """Each recorded (event type, version) whose schema the models changed."""
    if not recorded:
        return []
    problems = []
    for row in index(generated):
        event_type = row["event_type"]
        found = find(recorded, event_type)
        if found is None:
            continue
        _, old = found
        _, new = find(generated, event_type)  # type: ignore[misc]
        for version in row["versions"]:
            before = old["versions"].get(str(version))
            if before is not None and normalized(before) != normalized(
                new["versions"][str(version)]
            ):
                problems.append(
                    f"{event_type} v{version}: the schema changed but schema_version is still "
                    f"{version}; give the changed model schema_version {version + 1} (with an "
                    f"upcaster from v{version}) and keep v{version}'s shape as a historical model"
                )
        newest_recorded = max((int(v) for v in old["versions"]), default=0)
        if row["current_version"] < newest_recorded:
            problems.append(
                f"{event_type}: the doc records v{newest_recorded} but the model is at "
                f"v{row['current_version']}; versions only go up"
            )
    return problems


def problems(recorded: Contracts | None, generated: Contracts) -> list[str]:
    """Why the recorded doc and the generated contracts disagree (empty: they agree)."""
    if recorded is None:
        return [f"{JSON_PATH.name} is missing: run `{WRITE_COMMAND}`"]
    found = unversioned_changes(recorded, generated)
    for row in index(generated):
        located = find(recorded, row["event_type"])
        known = set() if located is None else {int(v) for v in located[1]["versions"]}
        for version in row["versions"]:
            if version not in known:
                found.append(
                    f"{row['event_type']} v{version} is not recorded in {JSON_PATH.name}: "
                    f"run `{WRITE_COMMAND}`"
                )
    if not found and merge(recorded, generated) != recorded:
        found.append(f"{JSON_PATH.name} is out of date: run `{WRITE_COMMAND}`")
    return found


# --- the doc -------------------------------------------------------------------------


def _type(schema: Mapping[str, Any]) -> str:
    """A short human name for a property's schema."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " or ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return f"object of {_type(extra)}" if isinstance(extra, dict) else "object"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    if kind == "string" and "pattern" in schema:
        return "string (id)"
    return str(kind)


def _fields(schema: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    required = set(schema.get("required", []))
    return [
        (name, _type(prop), name in required) for name, prop in schema.get("properties", {}).items()
    ]


def _change(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    if before is None:
        return "first version"
    old = {name: (kind, req) for name, kind, req in _fields(before)}
    new = {name: (kind, req) for name, kind, req in _fields(after)}
    parts = []
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    changed = [n for n in new if n in old and new[n] != old[n]]
    if added:
        parts.append("added " + ", ".join(f"`{n}`" for n in added))
    if removed:
        parts.append("removed " + ", ".join(f"`{n}`" for n in removed))
    if changed:
        parts.append("changed " + ", ".join(f"`{n}`" for n in changed))
    return "; ".join(parts) or "constraints changed"


def markdown(contracts: Contracts) -> str:
    """docs/CONTRACTS.md: every event type's versions and fields."""
    out = [
        "# Event contracts",
        "",
        f"Generated from the models by `{WRITE_COMMAND}`; do not edit by hand.",
        f"`{CHECK_COMMAND}` (run by `tests/unit/test_contracts.py`) fails when this",
        "doc and the models disagree, or when a recorded version's schema changed",
        "without a new `schema_version`. Versions are never removed from the doc.",
        "The full JSON Schemas are in [contracts.json](contracts.json) and at",
        "`GET /contracts/{event_type}` on any worker.",
        "",
        "Every event is an envelope (`event_id`, `event_type`, `schema_version`,",
        "`aggregate_type`, `aggregate_id`, `aggregate_version`, `occurred_at`,",
        "`correlation_id`, `causation_id`) around a `payload` described below;",
        'money is a decimal string such as `"12.50"`. Consumers see the newest',
        "version: older ones are upcast on read.",
        "",
        "An event appended by the command side also carries two record headers:",
        "`command` (the id of the command that decided it) and `fingerprint` (a",
        "SHA-256 of that request: type, aggregate, expected version, payload).",
        "They are how a redelivered command finds its answer in the log; an event",
        "without them (another producer's) is folded like any other.",
        "",
        "Every record of a request's path (its command, events, answers, and each",
        "saga step's) also carries a `traceparent` header (W3C Trace Context,",
        "`00-<trace id>-<parent id>-<flags>`): the trace id of the client's",
        "`traceparent`, or of one the worker started. It is the same on every",
        "record of one order's saga, and the order's timeline shows it.",
        "",
        "| context | topic | event type | current | versions |",
        "|---|---|---|---|---|",
    ]
    for row in index(contracts):
        versions = ", ".join(f"v{v}" for v in row["versions"])
        out.append(
            f"| {row['context']} | `{row['topic']}` | [{row['event_type']}]"
            f"(#{row['event_type'].lower()}) | v{row['current_version']} | {versions} |"
        )
    for context, entry in contracts["contexts"].items():
        out += ["", f"## {context}", "", f"Topic `{entry['topic']}`."]
        for event_type, event in entry["events"].items():
            out += ["", f"### {event_type}", ""]
            previous = None
            for version, schema in event["versions"].items():
                current = " (current)" if int(version) == event["current_version"] else ""
                out += [f"**v{version}**{current}: {_change(previous, schema)}.", ""]
                fields = _fields(schema)
                if fields:
                    out += ["| field | type | required |", "|---|---|---|"]
                    out += [
                        f"| `{name}` | {kind} | {'yes' if req else 'no'} |"
                        for name, kind, req in fields
                    ]
                else:
                    out.append("No fields.")
                out.append("")
                previous = schema
            out.pop()
    return "\n".join(out) + "\n"


def dumps(contracts: Contracts) -> str:
    """Stable JSON in the models' field order (generate() and merge() order the rest)."""
    return json.dumps(contracts, indent=2, ensure_ascii=False) + "\n"


def load(path: Path = JSON_PATH) -> Contracts | None:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def check(docs: Path = DOCS, models: Models | None = None) -> list[str]:
    """Everything wrong with the doc in `docs` against the models (empty: all good)."""
    recorded = load(docs / JSON_PATH.name)
    found = problems(recorded, generate(models))
    if recorded is not None and not found:
        try:
            text = (docs / MARKDOWN_PATH.name).read_text()
        except FileNotFoundError:
            text = None
        if text != markdown(recorded):
            found.append(f"{MARKDOWN_PATH.name} is out of date: run `{WRITE_COMMAND}`")
    return found


def write(docs: Path = DOCS, models: Models | None = None, force: bool = False) -> list[str]:
    """Write the doc; refuses (returns the reasons) when a recorded version changed."""
    recorded = load(docs / JSON_PATH.name)
    generated = generate(models)
    refused = unversioned_changes(recorded, generated)
    if refused and not force:
        return refused
    # with force, a recorded version is overwritten by what its model says now
    merged = merge(recorded, generated) if not force else _forced(recorded, generated)
    docs.mkdir(parents=True, exist_ok=True)
    (docs / JSON_PATH.name).write_text(dumps(merged))
    (docs / MARKDOWN_PATH.name).write_text(markdown(merged))
    return []


def _forced(recorded: Contracts | None, generated: Contracts) -> Contracts:
    merged = merge(recorded, generated)
    for row in index(generated):
        _, entry = find(merged, row["event_type"])  # type: ignore[misc]
        _, new = find(generated, row["event_type"])  # type: ignore[misc]
        entry["versions"].update(new["versions"])
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.contracts", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate docs/contracts.*")
    mode.add_argument("--check", action="store_true", help="fail if the doc is not current")
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --write: overwrite recorded versions whose schema changed (a fix-up)",
    )
    parser.add_argument("--docs", type=Path, default=DOCS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        refused = write(args.docs, force=args.force)
        for reason in refused:
            print(f"refused: {reason}", file=sys.stderr)
        if not refused:
            print(f"wrote {args.docs / JSON_PATH.name} and {args.docs / MARKDOWN_PATH.name}")
        return 1 if refused else 0
    found = check(args.docs)
    for reason in found:
        print(reason, file=sys.stderr)
    if not found:
        print("event contracts: the doc matches the models")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
