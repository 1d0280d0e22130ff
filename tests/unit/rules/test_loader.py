"""Loading rule files: which files, in which order, and every problem at its line."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from remediator.errors import Problem, RuleLoadError
from remediator.rules.loader import check_rule_files, load_rule_set

GOOD = """\
rules:
  - name: {name}
    match: ['alertname="{name}"']
"""


def write(directory: Path, name: str, content: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def good(directory: Path, file: str, rule: str) -> Path:
    return write(directory, file, GOOD.format(name=rule))


def problems(tmp_path: Path, content: str) -> list[str]:
    write(tmp_path, "rules.yml", textwrap.dedent(content))
    rule_set, found = check_rule_files(["rules.yml"], tmp_path)
    assert rule_set is None
    return [str(problem) for problem in found]


def rule_names(patterns: list[str], base_dir: Path) -> list[str]:
    return [rule.name for rule in load_rule_set(patterns, base_dir).rules]


def test_loads_a_file_and_records_each_rules_source(tmp_path: Path) -> None:
    write(tmp_path, "rules.yml", GOOD.format(name="a") + GOOD.format(name="b")[7:])
    rule_set = load_rule_set(["rules.yml"], tmp_path)
    assert [(rule.name, rule.source) for rule in rule_set.rules] == [
        ("a", "rules.yml:2"),
        ("b", "rules.yml:4"),
    ]
    assert rule_set.files == ("rules.yml",)


def test_a_directory_means_its_yaml_files_sorted_not_recursive(tmp_path: Path) -> None:
    good(tmp_path, "rules/b.yaml", "b")
    good(tmp_path, "rules/a.yml", "a")
    good(tmp_path, "rules/nested/c.yml", "c")
    write(tmp_path, "rules/README.md", "not rules")
    assert rule_names(["rules"], tmp_path) == ["a", "b"]


def test_globs_expand_sorted_including_double_star(tmp_path: Path) -> None:
    good(tmp_path, "r/z.yml", "z")
    good(tmp_path, "r/a.yml", "a")
    good(tmp_path, "r/deep/m.yml", "m")
    assert rule_names(["r/*.yml"], tmp_path) == ["a", "z"]
    assert rule_names(["r/**/*.yml"], tmp_path) == ["a", "m", "z"]


def test_files_load_in_the_order_given_and_only_once(tmp_path: Path) -> None:
    good(tmp_path, "rules/a.yml", "a")
    good(tmp_path, "rules/b.yml", "b")
    patterns = ["rules/b.yml", "rules", str(tmp_path / "rules" / "a.yml")]
    rule_set = load_rule_set(patterns, tmp_path)
    assert [rule.name for rule in rule_set.rules] == ["b", "a"]
    assert rule_set.files == ("rules/b.yml", "rules/a.yml")


def test_relative_patterns_resolve_against_base_dir_not_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good(tmp_path, "conf/rules.yml", "a")
    monkeypatch.chdir("/")
    assert rule_names(["rules.yml"], tmp_path / "conf") == ["a"]


def test_absolute_paths_outside_base_dir_are_shown_absolute(tmp_path: Path) -> None:
    path = good(tmp_path, "elsewhere/deep/down/rules.yml", "a")
    base_dir = tmp_path / "x" / "y" / "z" / "w" / "v"
    rule_set = load_rule_set([str(path)], base_dir)
    assert rule_set.files == (min(str(path), os.path.relpath(path, base_dir), key=len),)


def test_a_pattern_matching_nothing_is_a_problem(tmp_path: Path) -> None:
    good(tmp_path, "a.yml", "a")
    write(tmp_path, "empty/notes.txt", "")
    rule_set, found = check_rule_files(["a.yml", "missing.yml", "*.yaml", "empty"], tmp_path)
    assert rule_set is None
    assert [(p.file, p.line) for p in found] == [("missing.yml", 0), ("*.yaml", 0), ("empty", 0)]
    assert found[0].message == f"no rule files match 'missing.yml' (relative to {tmp_path})"


def test_load_rule_set_raises_with_every_problem_of_every_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "rules:\n  - name: a\n    match: ['x']\n")
    write(tmp_path, "b.yml", "rules:\n  - name: b\n    match: []\n")
    with pytest.raises(RuleLoadError) as caught:
        load_rule_set(["a.yml", "b.yml"], tmp_path)
    assert [(p.file, p.line) for p in caught.value.problems] == [("a.yml", 3), ("b.yml", 3)]
    assert str(caught.value).splitlines()[0].startswith("a.yml:3: rules[0].match[0]: invalid")


def test_an_unknown_key_names_the_known_ones_and_a_likely_fix(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
            rules:
              - name: a
                match: ['x="1"']
                actoins:
                  - type: log
            """,
    )
    assert found == [
        'rules.yml:4: rules[0]: unknown key "actoins" (did you mean "actions"?); known keys: '
        "name, description, match, on, incident, actions, verify, escalate, runbook, "
        "continue, dry_run, per, guards"
    ]


def test_unknown_keys_inside_actions_name_that_actions_keys(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
            rules:
              - name: a
                match: ['x="1"']
                actions:
                  - type: log
                    message: hi
                    levl: debug
            """,
    )
    assert found == [
        'rules.yml:7: rules[0].actions[0]: unknown key "levl" (did you mean "level"?); '
        "known keys: type, message, level"
    ]


def test_a_bad_matcher_is_reported_at_its_own_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
            rules:
              - name: a
                match:
                  - 'alertname="X"'
                  - 'severity: critical'
            """,
    )
    assert len(found) == 1
    assert found[0].startswith("rules.yml:5: rules[0].match[1]: invalid matcher")
    assert 'use name="value"' in found[0]


def test_template_errors_are_reported_at_the_field(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
            rules:
              - name: a
                match: ['x="1"']
                incident:
                  title: '{{ labels.x }'
                actions:
                  - type: log
                    message: >-
                      {% if labels.x %}
            """,
    )
    assert [problem.split(": ")[0:2] for problem in found] == [
        ["rules.yml:5", "rules[0].incident.title"],
        ["rules.yml:8", "rules[0].actions[0].message"],
    ]


def test_wrong_values_say_what_is_expected(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
            rules:
              - name: a
                match: ['x="1"']
                on: fired
                incident: {priority: P0}
                verify: {resolved_within: soon}
                runbook: [a, b]
            """,
    )
    assert found == [
        "rules.yml:4: rules[0].on: must be 'firing' or 'resolved', not 'fired'",
        "rules.yml:5: rules[0].incident.priority: must be 'P1', 'P2', 'P3' or 'P4', not 'P0'",
        "rules.yml:6: rules[0].verify.resolved_within: invalid duration 'soon': use a "
        "Prometheus duration such as 30s, 5m, 1h30m or 1d",
        "rules.yml:7: rules[0].runbook: must be a valid string, not a list",
    ]


def test_missing_keys_point_at_the_rule(tmp_path: Path) -> None:
    found = problems(tmp_path, "rules:\n  - name: a\n  - match: ['x=\"1\"']\n")
    assert found == [
        'rules.yml:2: rules[0]: missing required key "match"',
        'rules.yml:3: rules[1]: missing required key "name"',
    ]


def test_an_unknown_action_type_points_at_the_type(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
            rules:
              - name: a
                match: ['x="1"']
                actions:
                  - message: restart
                    type: restart-pod
            """,
    )
    assert found == [
        "rules.yml:6: rules[0].actions[0].type: unknown action type 'restart-pod'; "
        "known types: ansible, awx, http, kubernetes, log"
    ]


def test_duplicate_rule_names_across_files_point_at_the_second(tmp_path: Path) -> None:
    good(tmp_path, "a.yml", "same")
    write(tmp_path, "b.yml", "rules:\n  - name: other\n    match: ['x']\n  - name: same\n")
    rule_set, found = check_rule_files(["a.yml", "b.yml"], tmp_path)
    assert rule_set is None
    assert (
        Problem(
            "b.yml",
            4,
            "duplicate rule name 'same', first defined at a.yml:2; "
            "rule names must be unique across all rule files",
        )
        in found
    )


def test_duplicate_keys_are_problems(tmp_path: Path) -> None:
    found = problems(tmp_path, "rules:\n  - name: a\n    match: ['x=\"1\"']\n    name: b\n")
    assert found == ['rules.yml:4: duplicate key "name"; each key may appear once']


def test_yaml_syntax_errors_give_the_parsers_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "rules:\n  - name: a\n    match: ['x=\"1\"'\n  - name: b\n")
    assert len(found) == 1
    assert found[0].startswith("rules.yml:4: invalid YAML: ")


def test_tabs_are_a_yaml_error(tmp_path: Path) -> None:
    [found] = problems(tmp_path, "rules:\n\t- name: a\n")
    assert found.startswith("rules.yml:2: invalid YAML")


@pytest.mark.parametrize("content", ["", "# nothing yet\n", "---\n"])
def test_an_empty_file_is_a_problem(tmp_path: Path, content: str) -> None:
    assert problems(tmp_path, content) == [
        "rules.yml:1: the file is empty; a rule file needs a top-level `rules:` list"
    ]


@pytest.mark.parametrize("content", ["- name: a\n", "just text\n", "\n\n42\n"])
def test_the_top_level_must_be_a_mapping(tmp_path: Path, content: str) -> None:
    [found] = problems(tmp_path, content)
    assert found.endswith(": the top level must be a mapping with a `rules:` list")


def test_a_mapping_without_rules_says_so(tmp_path: Path) -> None:
    assert problems(tmp_path, "groups: []\n") == [
        'rules.yml:1: missing required key "rules"',
        'rules.yml:1: unknown key "groups"; known keys: rules',
    ]


def test_an_empty_rule_list_is_valid(tmp_path: Path) -> None:
    write(tmp_path, "rules.yml", "rules: []\n")
    assert load_rule_set(["rules.yml"], tmp_path).rules == ()


def test_unreadable_files_are_problems(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_bytes(b"rules: [\xff\xfe]\n")
    rule_set, found = check_rule_files(["rules.yml"], tmp_path)
    assert rule_set is None
    assert found[0].line == 0
    assert found[0].message.startswith("cannot read rule file")


def test_problems_are_ordered_by_file_then_line(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "rules:\n  - name: x\n    match: ['bad']\n  - name: y\n")
    write(tmp_path, "b.yml", "rules:\n  - name: x\n    match: ['bad']\n")
    _rule_set, found = check_rule_files(["b.yml", "a.yml"], tmp_path)
    assert [(p.file, p.line) for p in found] == [
        ("b.yml", 3),
        ("a.yml", 2),
        ("a.yml", 3),
        ("a.yml", 4),
    ]
