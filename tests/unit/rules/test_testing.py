"""`remediator test`: rule unit tests, like `promtool test rules`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediator.cli import main
from remediator.config import PrioritiesConfig
from remediator.incidents.priority import Priority
from remediator.rules.testing import alertmanager_fingerprint, run_rule_tests
from tests.conftest import REPO

FIXTURES = REPO.parent / "shared" / "fixtures" / "alertmanager-0.25"

RULES = """\
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    incident:
      priority: P1
      group_by: [alertname, instance]
      title: "Disk {{ labels.mountpoint }} on {{ labels.instance }}"
    actions:
      - type: ansible
        playbook: disk-cleanup.yml
        extravars: {mountpoint: "{{ labels.mountpoint }}"}
        timeout: 10m
  - name: severity-only
    match: ['team="db"']
"""

PASSING = """\
rule_files: [rules.yml]
tests:
  - name: a full disk is cleaned with the alert's mountpoint
    alert:
      labels: {alertname: DiskWillFillIn4Hours, instance: "db-1:9100", mountpoint: /var}
    expect:
      - rule: disk
        priority: P1
        incident_key: 'disk/alertname="DiskWillFillIn4Hours",instance="db-1:9100"'
        title: Disk /var on db-1:9100
        actions:
          - {type: ansible, playbook: disk-cleanup.yml, extravars: {mountpoint: /var}}
  - name: a template in a label stays text
    alert:
      labels: {alertname: DiskWillFillIn4Hours, instance: "db-1:9100", mountpoint: "{{ 7*7 }}"}
    expect:
      - rule: disk
        actions: [{extravars: {mountpoint: "{{ 7*7 }}"}, timeout: 600s}]
  - name: the severity decides a rule without priority
    alert: {labels: {alertname: Other, team: db, severity: critical}}
    expect: [{rule: severity-only, priority: P1}]
  - name: resolved alerts match no firing rule
    alert:
      labels: {alertname: DiskWillFillIn4Hours}
      status: resolved
    expect: []
"""


def write(tmp_path: Path, tests: str, rules: str = RULES) -> Path:
    (tmp_path / "rules.yml").write_text(rules)
    path = tmp_path / "rules.test.yml"
    path.write_text(tests)
    return path


def test_fingerprints_are_alertmanagers_own() -> None:
    checked = 0
    for path in sorted(FIXTURES.glob("*.json")):
        body = json.loads(path.read_text())
        for alert in body.get("alerts", []) if isinstance(body, dict) else []:
            assert alertmanager_fingerprint(alert["labels"]) == alert["fingerprint"], path
            checked += 1
    if checked == 0:
        pytest.skip(f"no Alertmanager fixtures in {FIXTURES}")
    assert alertmanager_fingerprint({}) == "cbf29ce484222325"


def test_a_passing_file_reports_every_test(tmp_path: Path) -> None:
    report = run_rule_tests([write(tmp_path, PASSING)])
    assert report.failures == []
    assert (report.files, report.tests, report.ok) == (1, 4, True)


def test_each_difference_is_reported_at_its_test(tmp_path: Path) -> None:
    failing = """\
rule_files: [rules.yml]
tests:
  - name: wrong
    alert:
      labels: {alertname: DiskWillFillIn4Hours, instance: "db-1:9100", mountpoint: /var}
    expect:
      - rule: disk
        priority: P3
        incident_key: nope
        title: Disk /tmp
        actions: [{extravars: {mountpoint: /tmp}, timeout: 5m, nope: 1}]
  - name: nothing matches
    alert: {labels: {alertname: Other}}
    expect: [{rule: disk}]
"""
    path = write(tmp_path, failing)
    report = run_rule_tests([path])
    messages = [str(failure) for failure in report.failures]
    prefix = f'{path}:3: test "wrong": rule disk: '
    assert messages == [
        prefix + 'incident_key: got \'disk/alertname="DiskWillFillIn4Hours",'
        "instance=\"db-1:9100\"', want 'nope'",
        prefix + "priority: got P1, want P3",
        prefix + "title: got 'Disk /var on db-1:9100', want 'Disk /tmp'",
        prefix + "action 1 extravars: got {'mountpoint': '/var'}, want {'mountpoint': '/tmp'}",
        prefix + "action 1 timeout: got 10m, want '5m'",
        prefix + "action 1: no parameter 'nope' (it has: check_mode, extravars, hosts, limit, "
        "playbook, retries, skip_tags, tags, timeout, type)",
        f"{path}:12: test \"nothing matches\": matching rules: got none, want ['disk']",
    ]


def test_the_config_priorities_decide_severity_mapping(tmp_path: Path) -> None:
    tests = PASSING.replace("expect: [{rule: severity-only, priority: P1}]", "expect: []")
    tests += """\
  - name: mapped by the given config
    alert: {labels: {alertname: Other, team: db, severity: critical}}
    expect: [{rule: severity-only, priority: P3}]
"""
    priorities = PrioritiesConfig(severity_map={"critical": Priority.P3})
    report = run_rule_tests([write(tmp_path, tests)], priorities)
    assert [f.message for f in report.failures] == [
        'test "the severity decides a rule without priority": matching rules: '
        "got ['severity-only'], want none"
    ]


def test_a_broken_test_file_names_the_field_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "rule_files: [rules.yml]\ntests:\n  - name: x\n    alrt: {}\n")
    report = run_rule_tests([path])
    assert report.failures, "an invalid test file must fail"
    assert all(f.file == str(path) for f in report.failures)
    assert any(f.line == 4 and "alrt" in f.message for f in report.failures), report.failures


def test_rule_files_that_do_not_load_fail_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, PASSING, rules="rules:\n  - name: x\n    match: ['a=~\"[\"']\n")
    report = run_rule_tests([path])
    assert len(report.failures) == 1
    assert report.failures[0].line == 1
    assert report.failures[0].message.startswith("rule_files do not load: ")
    missing = run_rule_tests([tmp_path / "absent.test.yml"])
    assert missing.failures[0].message.startswith("cannot read test file")


def test_the_command_exits_1_on_failure_and_0_on_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, PASSING)
    assert main(["test", str(good)]) == 0
    assert capsys.readouterr().out == "SUCCESS: 4 tests in 1 files\n"
    bad = tmp_path / "bad.test.yml"
    bad.write_text(
        PASSING.replace("priority: P1\n        incident_key", "priority: P2\n        incident_key")
    )
    assert main(["test", str(good), str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "FAILED: 1 of 8 tests in 2 files"
    assert err[0].startswith(f'{bad}:3: test "a full disk')


def test_the_example_rule_tests_pass() -> None:
    files = sorted((REPO / "tests" / "examples" / "tests").glob("*.test.yml"))
    assert files, "tests/examples/tests/ holds the documented rule-test example"
    report = run_rule_tests(files)
    assert report.failures == []
    assert report.tests >= 4
