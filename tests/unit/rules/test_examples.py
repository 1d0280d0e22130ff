"""The numbered files in tests/examples/ are documentation; this proves what they claim.

Each example's header comment lists checked lines of the form

    #   <check> {<label set>} -> <expected>

check     expected
firing    the rules that match a firing alert, in order, or (none)
resolved  the same for a resolved alert
incident  the incident key of the first matching rule
title     the rendered incident title of the first matching rule, quoted
log       the rendered message of its first log action, quoted
priority  the incident priority (rule priority, else from the severity label)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from remediator.incidents.priority import DEFAULT_SEVERITY_MAP, Priority, priority_for
from remediator.rules.compiled import CompiledRule, RuleSet
from remediator.rules.loader import load_rule_set
from remediator.rules.matcher import parse_matcher
from remediator.rules.templating import Template, render_context

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yml"))
CHECK_LINE = re.compile(r"^#\s+(firing|resolved|incident|title|log|priority) (\{.*\}) -> (.*)$")
LABEL = re.compile(r'\s*([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


@dataclass(frozen=True)
class Check:
    kind: str
    labels: dict[str, str]
    expected: str
    line: int


def parse_labels(text: str) -> dict[str, str]:
    """`{a="1", b="x"}` with matcher escaping, as Alertmanager prints label sets."""
    body = text.strip()[1:-1]
    labels: dict[str, str] = {}
    position = 0
    while position < len(body):
        found = LABEL.match(body, position)
        assert found is not None, f"bad label set {text!r} at {body[position:]!r}"
        labels[found[1]] = parse_matcher(f'{found[1]}="{found[2]}"').value
        position = found.end()
    return labels


def checks(path: Path) -> list[Check]:
    found = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = CHECK_LINE.match(line)
        # A mistyped check must fail, not be skipped silently.
        looks_like_one = re.match(r"^#\s+\w+ \{", line) is not None
        assert match or not looks_like_one, f"{path.name}:{number}: not a valid check line"
        if match:
            kind, labels, expected = match.groups()
            found.append(Check(kind, parse_labels(labels), expected.strip(), number))
    return found


def first_rule(rule_set: RuleSet, check: Check) -> CompiledRule:
    matched = rule_set.match(check.labels, "firing")
    assert matched, f"line {check.line}: no rule matches {check.labels}"
    return matched[0]


def render(template: Template | None, labels: dict[str, str]) -> str:
    assert template is not None
    return '"' + template.render(render_context(labels, {}, {"status": "firing"}, {})) + '"'


def outcome(rule_set: RuleSet, check: Check) -> str:
    if check.kind in ("firing", "resolved"):
        names = [rule.name for rule in rule_set.match(check.labels, check.kind)]
        return ", ".join(names) or "(none)"
    rule = first_rule(rule_set, check)
    if check.kind == "incident":
        return rule.incident_key("fingerprint-not-used", check.labels)
    if check.kind == "title":
        return render(rule.title, check.labels)
    if check.kind == "log":
        log = next(action for action in rule.actions if action.type == "log")
        return render(log.params["message"], check.labels)
    return priority_for(rule.priority, check.labels, DEFAULT_SEVERITY_MAP, Priority.P3).value


def test_the_examples_are_numbered_and_explained() -> None:
    assert len(EXAMPLE_FILES) >= 6
    for index, path in enumerate(EXAMPLE_FILES, start=1):
        assert path.name.startswith(f"{index:02d}-"), path.name
        header = path.read_text().splitlines()[0]
        assert header.startswith(f"# {index:02d} — "), f"{path.name} needs a title comment"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_each_example_does_what_its_comments_say(path: Path) -> None:
    rule_set = load_rule_set([path.name], EXAMPLES)
    found = checks(path)
    assert found, f"{path.name} documents no checked behaviour"
    for check in found:
        assert outcome(rule_set, check) == check.expected, f"{path.name}:{check.line}"


def test_all_examples_load_together() -> None:
    """Names are unique across the examples, so the directory works as one rule set."""
    rule_set = load_rule_set([str(EXAMPLES)], EXAMPLES)
    assert len(rule_set.files) == len(EXAMPLE_FILES)


def test_the_label_set_parser_understands_escapes() -> None:
    assert parse_labels('{a="x\\"y", b="", c="{{ 7*7 }}"}') == {
        "a": 'x"y',
        "b": "",
        "c": "{{ 7*7 }}",
    }
