"""Unit tests for rule files, run by `remediator test FILE…` like `promtool test rules`.

A test file names the rule files it tests and, per test, one input alert and the rules
that must match it, in order, with what each would do: the incident key, priority and
title, and the rendered parameters of its actions. Nothing runs: no database, no
executor, no network. Only the keys a test lists are compared, so a test states what it
cares about and survives unrelated edits.

    rule_files: [../node.yml]            # relative to the test file
    tests:
      - name: a filling /var is cleaned up
        alert:
          labels: {alertname: NodeFilesystemSpaceFillingUp, instance: "db-1:9100"}
        expect:
          - rule: node-filesystem-filling
            priority: P2
            actions:
              - {type: ansible, playbook: disk-cleanup.yml, extravars: {mountpoint: /var}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from remediator.config import PrioritiesConfig
from remediator.durations import Duration, format_duration, parse_duration
from remediator.errors import Problem
from remediator.guards.spec import GuardDefaults
from remediator.guards.testing import decide_for_test
from remediator.incidents.priority import Priority, priority_for
from remediator.rules.compiled import CompiledRule, RuleSet
from remediator.rules.loader import check_rule_files
from remediator.rules.problems import validation_problems, yaml_problem
from remediator.rules.templating import TemplateError, render_context, render_params
from remediator.yaml_lines import YamlDocument, parse_yaml

__all__ = ["RuleTestFile", "TestReport", "alertmanager_fingerprint", "run_rule_tests"]

# The startsAt a test alert gets: fixed, so rendered parameters are reproducible.
TEST_STARTS_AT = datetime(2026, 1, 1, tzinfo=UTC)
# The incident id templates see in a test (no incident is stored).
TEST_INCIDENT_ID = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TestAlert(_Strict):
    """The input: one alert as Alertmanager would deliver it."""

    __test__ = False  # not a pytest test class, despite the name

    labels: dict[str, str] = Field(description="the alert's labels, alertname included")
    annotations: dict[str, str] = Field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"
    fingerprint: str | None = Field(
        None, description="default: computed from labels exactly as Alertmanager does"
    )


class ExpectedMatch(_Strict):
    """One rule that must match, and (optionally) what it must produce."""

    rule: str
    incident_key: str | None = None
    priority: Priority | None = None
    title: str | None = None
    actions: list[dict[str, Any]] | None = Field(
        None,
        description="one mapping per action, in order; only the keys listed are compared "
        "with the rendered parameters",
    )
    guard: ExpectedGuard | None = Field(
        None, description="the guards' decision on this rule's remediation of the alert"
    )


class PastRemediation(_Strict):
    """A remediation that already happened (or still runs) before the test alert."""

    ago: Duration = Field(description="how long before the test alert it started, e.g. 10m")
    target: str = Field(description="its target, e.g. db-1:9100")
    rule: str | None = Field(None, description="its rule; default: the rule under test")
    running: bool = Field(False, description="still running (holds its target)")
    ended_ago: Duration | None = Field(None, description="when it ended; default: when started")
    rate_key: str = Field("", description="its rate-limit key, as the rule renders it")
    group: str = Field("", description="its blast-radius group, as the rule renders it")


class GivenBreaker(_Strict):
    state: Literal["closed", "open", "half_open"] = "closed"
    failures: int = Field(0, ge=0)
    open_for: Duration = Field(timedelta(minutes=30), description="how long it stays open still")


class GuardState(_Strict):
    """What the guards know before the test alert arrives; all empty by default."""

    paused: str | None = Field(None, description="the kill switch is on, for this reason")
    maintenance_window: str | None = Field(None, description="this window is active")
    remediations: list[PastRemediation] = Field(default_factory=list)
    flaps: int = Field(0, ge=0, description="times the alert resolved within the window")
    breaker: GivenBreaker = Field(default_factory=GivenBreaker)
    alerting_in_group: int = Field(0, ge=0, description="targets of the group alerting now")
    approved: bool = Field(False, description="an operator approved the remediation")


class ExpectedGuard(_Strict):
    """What the guards decide for the test alert's remediation."""

    verdict: Literal["allowed", "blocked", "pending"]
    by: str | None = Field(None, description="the guard that blocks or holds it, e.g. rate_limit")
    reason_contains: str | None = None


class RuleTestCase(_Strict):
    name: str
    alert: TestAlert
    guard_state: GuardState | None = Field(
        None, description="guard state before the alert; needed to expect a guard decision"
    )
    expect: list[ExpectedMatch] = Field(description="the matching rules, in order; [] = none")


class RuleTestFile(_Strict):
    """A rule unit-test file."""

    rule_files: list[str] = Field(min_length=1, description="relative to this test file")
    tests: list[RuleTestCase] = Field(min_length=1)


@dataclass(slots=True)
class TestReport:
    """What one `remediator test` run found: problems are `file:line: message` lines."""

    __test__ = False  # not a pytest test class, despite the name

    files: int = 0
    tests: int = 0
    failures: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def alertmanager_fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's alert fingerprint: 64-bit FNV-1a over the sorted label pairs.

    The same value Alertmanager puts in webhooks (prometheus/common `LabelSet.Fingerprint`),
    so that incident keys in tests equal the ones the service computes.
    """
    value = 0xCBF29CE484222325  # FNV-1a 64 offset basis
    for name in sorted(labels):
        for part in (name.encode(), b"\xff", labels[name].encode(), b"\xff"):
            for byte in part:
                value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def run_rule_tests(
    paths: Sequence[Path],
    priorities: PrioritiesConfig | None = None,
    guards: GuardDefaults | None = None,
) -> TestReport:
    """Run every test in `paths`; a file that cannot be loaded is one failure, not a crash.

    `priorities` and `guards` are the service config's (defaults when not given)."""
    report = TestReport()
    settings = _Settings(priorities or PrioritiesConfig(), guards or GuardDefaults())
    for path in paths:
        report.files += 1
        _run_file(path, settings, report)
    return report


@dataclass(frozen=True, slots=True)
class _Settings:
    priorities: PrioritiesConfig
    guards: GuardDefaults


def _run_file(path: Path, settings: _Settings, report: TestReport) -> None:
    shown = str(path)
    loaded = _load_test_file(path, shown)
    if isinstance(loaded, list):
        report.failures.extend(loaded)
        return
    test_file, doc = loaded
    rule_set, problems = check_rule_files(test_file.rule_files, path.parent)
    if rule_set is None:
        line = doc.line_of(("rule_files",))
        report.failures.extend(
            Problem(shown, line, f"rule_files do not load: {p}") for p in problems
        )
        return
    for index, case in enumerate(test_file.tests):
        report.tests += 1
        line = doc.line_of(("tests", index))
        for message in _run_case(case, rule_set, settings):
            report.failures.append(Problem(shown, line, f'test "{case.name}": {message}'))


def _load_test_file(path: Path, shown: str) -> tuple[RuleTestFile, YamlDocument] | list[Problem]:
    try:
        doc = parse_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        return [Problem(shown, 0, f"cannot read test file: {error}")]
    except yaml.YAMLError as error:
        return [yaml_problem(shown, error)]
    if not isinstance(doc.data, dict):
        return [Problem(shown, 1, "a test file is a mapping with `rule_files:` and `tests:`")]
    try:
        return RuleTestFile.model_validate(doc.data), doc
    except ValidationError as error:
        return validation_problems(shown, doc, error, root=RuleTestFile)


def _run_case(case: RuleTestCase, rule_set: RuleSet, settings: _Settings) -> list[str]:
    alert = case.alert
    matched = rule_set.match(alert.labels, alert.status)
    got_names = [rule.name for rule in matched]
    want_names = [expected.rule for expected in case.expect]
    if got_names != want_names:
        return [f"matching rules: got {got_names or 'none'}, want {want_names or 'none'}"]
    failures: list[str] = []
    for rule, expected in zip(matched, case.expect, strict=True):
        failures.extend(
            f"rule {rule.name}: {message}"
            for message in _compare(rule, expected, alert, settings.priorities)
        )
        if expected.guard is not None:
            failures.extend(
                f"rule {rule.name}: guard: {message}"
                for message in _compare_guard(rule, expected.guard, case, settings)
            )
    return failures


def _compare_guard(
    rule: CompiledRule, want: ExpectedGuard, case: RuleTestCase, settings: _Settings
) -> list[str]:
    if case.guard_state is None:
        return ["give the test a `guard_state:` (it may be {}) to expect a guard decision"]
    alert = case.alert
    priority = priority_for(
        rule.priority, alert.labels, settings.priorities.severity_map, settings.priorities.default
    )
    fingerprint = alert.fingerprint or alertmanager_fingerprint(alert.labels)
    try:
        outcome = decide_for_test(
            rule,
            settings.guards,
            alert.labels,
            alert.annotations,
            fingerprint,
            priority.value,
            case.guard_state,
        )
    except TemplateError as error:
        return [f"a guard template failed: {error}"]
    deciding = outcome.deciding
    got_by = deciding.guard if deciding else None
    reason = deciding.reason if deciding else "; ".join(d.reason for d in outcome.decisions)
    failures = []
    if outcome.verdict.value != want.verdict:
        failures.append(
            f"got {outcome.verdict.value} ({got_by or 'all guards'}: {reason}), want {want.verdict}"
        )
    elif want.by is not None and got_by != want.by:
        failures.append(f"decided by {got_by or 'no guard'}, want {want.by} ({reason})")
    if want.reason_contains is not None and want.reason_contains not in reason:
        failures.append(f"reason {reason!r} does not contain {want.reason_contains!r}")
    return failures


def _compare(
    rule: CompiledRule, expected: ExpectedMatch, alert: TestAlert, priorities: PrioritiesConfig
) -> list[str]:
    fingerprint = alert.fingerprint or alertmanager_fingerprint(alert.labels)
    key = rule.incident_key(fingerprint, alert.labels)
    priority = priority_for(
        rule.priority, alert.labels, priorities.severity_map, priorities.default
    )
    context = render_context(
        alert.labels,
        alert.annotations,
        {"fingerprint": fingerprint, "status": alert.status, "starts_at": str(TEST_STARTS_AT)},
        {"id": TEST_INCIDENT_ID, "key": key, "rule": rule.name, "priority": priority.value},
    )
    failures = []
    if expected.incident_key is not None and expected.incident_key != key:
        failures.append(f"incident_key: got {key!r}, want {expected.incident_key!r}")
    if expected.priority is not None and expected.priority != priority:
        failures.append(f"priority: got {priority.value}, want {expected.priority.value}")
    if expected.title is not None:
        failures.extend(_compare_title(rule, expected.title, context))
    if expected.actions is not None:
        failures.extend(_compare_actions(rule, expected.actions, context))
    return failures


def _compare_title(rule: CompiledRule, want: str, context: Mapping[str, Any]) -> list[str]:
    if rule.title is None:
        return [f"title: the rule has no title template, want {want!r}"]
    try:
        got = rule.title.render(context)
    except TemplateError as error:
        return [f"title: {error}"]
    return [] if got == want else [f"title: got {got!r}, want {want!r}"]


def _compare_actions(
    rule: CompiledRule, wanted: list[dict[str, Any]], context: Mapping[str, Any]
) -> list[str]:
    if len(wanted) != len(rule.actions):
        got_types = [action.type for action in rule.actions]
        return [f"actions: the rule has {len(rule.actions)} ({got_types}), want {len(wanted)}"]
    failures = []
    for number, (action, want) in enumerate(zip(rule.actions, wanted, strict=True), start=1):
        try:
            params = render_params(action.params, context)
        except TemplateError as error:
            failures.append(f"action {number} ({action.type}): {error}")
            continue
        for key, want_value in want.items():
            if key not in params:
                known = ", ".join(sorted(params))
                failures.append(f"action {number}: no parameter {key!r} (it has: {known})")
                continue
            got_value = params[key]
            if not _same(got_value, want_value):
                failures.append(
                    f"action {number} {key}: got {_shown(got_value)}, want {_shown(want_value)}"
                )
    return failures


def _same(got: Any, want: Any) -> bool:
    """Equal as YAML states it: durations may be written `5m`, mappings compare whole."""
    if isinstance(got, timedelta) and isinstance(want, str):
        try:
            return got == parse_duration(want)
        except ValueError:
            return False
    return bool(got == want)


def _shown(value: Any) -> str:
    if isinstance(value, timedelta):
        return format_duration(value)
    return repr(value)
