"""The alert rules' house rules, read from ops/prometheus/alerts.yml (promtool checks their
syntax and behaviour: scripts/test.sh): each alert waits a `for:`, has a severity, and its
runbook is a section of docs/operating.md; its unit tests cover every alert."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "alerts.yml"
TESTS = ROOT / "ops" / "prometheus" / "alerts_test.yml"
RUNBOOK = ROOT / "docs" / "operating.md"
SEVERITIES = {"critical", "warning", "info"}


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces to -."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_alert_waits_has_a_severity_and_a_runbook_section() -> None:
    sections = anchors(RUNBOOK.read_text())
    rules = alerts()
    assert len(rules) >= 9
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"[0-9]+[smh]", str(rule.get("for", ""))), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        runbook = rule["annotations"]["runbook"]
        path, _, anchor = runbook.partition("#")
        assert path == "docs/operating.md" and anchor == name.lower(), (name, runbook)
        assert anchor in sections, f"{name}: no section {anchor} in docs/operating.md"
        assert rule["annotations"]["summary"], name


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    cases = [
        case
        for test in yaml.safe_load(TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for rule in alerts():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']} never fires"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']} always fires"


def test_headings_become_anchors() -> None:
    assert anchors("## Running Prometheus, here\n### ShopWorkerDown\n") == {
        "running-prometheus-here",
        "shopworkerdown",
    }
