"""rules/default.yml, the file `make run` loads, handles the real Alertmanager payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from remediator.incidents.priority import Priority
from remediator.rules.compiled import CompiledRule
from remediator.rules.loader import load_rule_set
from remediator.rules.templating import render_context

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO.parent / "shared" / "fixtures" / "alertmanager-0.25"


def alerts(fixture: str) -> list[dict[str, Any]]:
    path = FIXTURES / fixture
    if not path.exists():
        pytest.skip(f"fixture {path} is not available")
    body: dict[str, Any] = json.loads(path.read_text())
    found: list[dict[str, Any]] = body["alerts"]
    return found


def only_match(alert: dict[str, Any]) -> CompiledRule:
    rule_set = load_rule_set(["rules/"], REPO)
    [rule] = rule_set.match(alert["labels"], alert["status"])
    return rule


def render_all(rule: CompiledRule, alert: dict[str, Any]) -> list[str]:
    context = render_context(alert["labels"], alert["annotations"], alert, {"id": 1})
    assert rule.title is not None
    messages = [action.params["message"].render(context) for action in rule.actions]
    return [rule.title.render(context), *messages]


def test_the_shipped_rules_load() -> None:
    rule_set = load_rule_set(["rules/"], REPO)
    assert rule_set.files == ("rules/default.yml",)
    assert all(rule.runbook and rule.title and rule.actions for rule in rule_set.rules)
    assert {action.type for rule in rule_set.rules for action in rule.actions} == {"log"}


def test_crash_looping_pods_of_one_service_share_an_incident() -> None:
    first, second = alerts("crashloop-two-pods-firing.json")
    rule = only_match(first)
    assert rule.name == "kube-pod-crashlooping"
    assert rule.group_by == ("alertname", "namespace", "service")
    assert rule.incident_key(first["fingerprint"], first["labels"]) == rule.incident_key(
        second["fingerprint"], second["labels"]
    )
    title, message = render_all(rule, first)
    assert title == "checkout pods crash loop in shop"
    assert "shop/checkout-7d9f8b-p9z1m" in message


def test_a_resolved_crash_loop_matches_no_firing_rule() -> None:
    _firing, resolved = alerts("crashloop-one-resolved-one-firing.json")
    assert resolved["status"] == "resolved"
    assert load_rule_set(["rules/"], REPO).match(resolved["labels"], "resolved") == []


def test_disk_filling_is_p1_per_instance_and_mountpoint() -> None:
    [alert] = alerts("diskfill-firing.json")
    rule = only_match(alert)
    assert rule.name == "disk-will-fill-in-4-hours"
    assert rule.priority is Priority.P1
    assert rule.incident_key(alert["fingerprint"], alert["labels"]) == (
        'disk-will-fill-in-4-hours/alertname="DiskWillFillIn4Hours",'
        'instance="db-1:9100",mountpoint="/var/lib/postgresql"'
    )
    title, message = render_all(rule, alert)
    assert title == "Disk /var/lib/postgresql on db-1:9100 fills within 4 hours"
    assert "https://runbooks.example.com/disk-full" in message
