"""The shipped rule library (rules/*.yml, which `make run` loads) and its rule unit tests.

The fixture tests feed the real Alertmanager payloads in shared/fixtures through the
shipped rules; rules/tests/*.test.yml cover every rule in detail and run here too, so CI
runs them with the suite.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediator.cli import main
from remediator.incidents.priority import Priority
from remediator.rules.compiled import CompiledRule, RuleSet
from remediator.rules.loader import load_rule_set
from remediator.rules.templating import render_context, render_params

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO.parent / "shared" / "fixtures" / "alertmanager-0.25"
RULE_TESTS = sorted((REPO / "rules" / "tests").glob("*.test.yml"))
# What every runbook tells the human, in this order.
RUNBOOK_PARTS = ("Meaning:", "Likely causes:", "What remediator does:", "Check next:")


def alerts(fixture: str) -> list[dict[str, Any]]:
    path = FIXTURES / fixture
    if not path.exists():
        pytest.skip(f"fixture {path} is not available")
    body: dict[str, Any] = json.loads(path.read_text())
    found: list[dict[str, Any]] = body["alerts"]
    return found


def shipped() -> RuleSet:
    return load_rule_set(["rules/"], REPO)


def only_match(alert: dict[str, Any]) -> CompiledRule:
    [rule] = shipped().match(alert["labels"], alert["status"])
    return rule


def rendered(rule: CompiledRule, alert: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The incident title and every action's parameters, as the alert renders them."""
    context = render_context(alert["labels"], alert["annotations"], alert, {"id": 1})
    assert rule.title is not None
    return rule.title.render(context), [render_params(a.params, context) for a in rule.actions]


def test_the_library_loads_and_every_rule_is_complete() -> None:
    rule_set = shipped()
    assert rule_set.files == ("rules/kubernetes.yml", "rules/node.yml")
    for rule in rule_set.rules:
        assert rule.title is not None, rule.name
        assert rule.remediates, rule.name
        assert rule.verify is not None, rule.name
        assert rule.verify.resolved_within is not None, rule.name
        assert rule.runbook is not None, rule.name
        positions = [rule.runbook.find(part) for part in RUNBOOK_PARTS]
        assert -1 not in positions, rule.name
        assert positions == sorted(positions), rule.name
    assert {a.type for r in rule_set.rules for a in r.actions} == {"ansible", "kubernetes"}


def test_every_shipped_rule_has_rule_unit_tests() -> None:
    tested = {
        expected["rule"]
        for path in RULE_TESTS
        for case in yaml.safe_load(path.read_text())["tests"]
        for expected in case["expect"]
    }
    assert {rule.name for rule in shipped().rules} <= tested


def test_the_rule_unit_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert RULE_TESTS, "rules/tests/*.test.yml are missing"
    code = main(["test", *map(str, RULE_TESTS)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("SUCCESS"), out


def test_crash_looping_pods_of_one_service_share_an_incident() -> None:
    first, second = alerts("crashloop-two-pods-firing.json")
    rule = only_match(first)
    assert rule.name == "kube-pod-crashlooping"
    assert rule.group_by == ("alertname", "namespace", "service")
    assert rule.incident_key(first["fingerprint"], first["labels"]) == rule.incident_key(
        second["fingerprint"], second["labels"]
    )
    # One pod per incident: the second pod's alert joins without deleting another pod.
    assert rule.per == "incident"
    title, [action] = rendered(rule, first)
    assert title == "checkout pods crash loop in shop"
    assert action["action"] == "delete_pod"
    assert (action["namespace"], action["name"]) == ("shop", "checkout-7d9f8b-p9z1m")


def test_a_resolved_crash_loop_matches_no_firing_rule() -> None:
    _firing, resolved = alerts("crashloop-one-resolved-one-firing.json")
    assert resolved["status"] == "resolved"
    assert shipped().match(resolved["labels"], "resolved") == []


def test_a_filling_disk_is_cleaned_up_per_instance_and_mountpoint() -> None:
    [alert] = alerts("diskfill-firing.json")
    rule = only_match(alert)
    assert rule.name == "node-filesystem-filling"
    assert rule.priority is None  # the alert's severity decides: critical
    assert alert["labels"]["severity"] == "critical"
    assert rule.incident_key(alert["fingerprint"], alert["labels"]) == (
        'node-filesystem-filling/instance="db-1:9100",mountpoint="/var/lib/postgresql"'
    )
    title, [action] = rendered(rule, alert)
    assert title == "Disk /var/lib/postgresql on db-1:9100 is filling up"
    assert action["playbook"] == "disk-cleanup.yml"
    assert action["extravars"] == {"mountpoint": "/var/lib/postgresql"}


def test_a_not_ready_node_is_cordoned_and_then_escalates() -> None:
    [rule] = shipped().match({"alertname": "KubeNodeNotReady", "node": "worker-3"}, "firing")
    assert [a.params["action"] for a in rule.actions] == ["cordon"]
    # A cordon never heals the node: the verification window ends right away, so the
    # incident escalates instead of claiming a fix.
    assert rule.verify is not None
    assert rule.verify.resolved_within == timedelta(0)  # act, then hand over
    assert rule.priority is Priority.P2
