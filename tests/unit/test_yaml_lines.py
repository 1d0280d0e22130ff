"""YAML parsing for rule files: `on:` stays a key, and every node knows its line."""

from __future__ import annotations

import pytest
import yaml

from remediator.yaml_lines import parse_yaml

DOC = """\
rules:
  - name: first
    match:
      - 'a="1"'
      - 'b="2"'
  - name: second
    on: resolved
    incident:
      group_by:
        [alertname,
         instance]
"""


def test_on_yes_no_off_stay_strings() -> None:
    data = parse_yaml("on: resolved\nyes: no\noff: On\n").data
    assert data == {"on": "resolved", "yes": "no", "off": "On"}


def test_true_and_false_are_still_booleans() -> None:
    assert parse_yaml("a: true\nb: False\nc: TRUE\n").data == {"a": True, "b": False, "c": True}


def test_other_scalars_resolve_as_usual() -> None:
    assert parse_yaml("a: 1\nb: 1.5\nc: null\nd: ~\n").data == {
        "a": 1,
        "b": 1.5,
        "c": None,
        "d": None,
    }


def test_unsafe_tags_are_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        parse_yaml("a: !!python/object/apply:os.system ['true']\n")


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        ((), 1),
        (("rules",), 1),
        (("rules", 0), 2),
        (("rules", 0, "match"), 3),
        (("rules", 0, "match", 1), 5),
        (("rules", 1), 6),
        (("rules", 1, "on"), 7),
        (("rules", 1, "incident", "group_by", 1), 11),
    ],
)
def test_line_of_finds_keys_and_items(loc: tuple[str | int, ...], line: int) -> None:
    assert parse_yaml(DOC).line_of(loc) == line


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (("rules", 0, "actions"), 2),
        (("rules", 7, "name"), 1),
        (("rules", 0, "name", "deeper"), 2),
        (("rules", 0, "match", 9), 3),
    ],
)
def test_line_of_falls_back_to_the_nearest_existing_parent(
    loc: tuple[str | int, ...], line: int
) -> None:
    assert parse_yaml(DOC).line_of(loc) == line


def test_line_of_an_empty_document_is_one() -> None:
    assert parse_yaml("# only a comment\n").line_of(("rules",)) == 1


def test_duplicate_keys_are_found_with_their_lines() -> None:
    doc = parse_yaml("rules:\n  - name: a\n    match: []\n    name: b\nrules: []\n")
    assert sorted(doc.duplicate_keys()) == [(4, "name"), (5, "rules")]


def test_aliases_do_not_loop_the_duplicate_search() -> None:
    doc = parse_yaml("base: &b {x: 1}\nuse: *b\nlist: &l [1, 2]\nagain: *l\n")
    assert doc.duplicate_keys() == []


def test_only_one_document_per_file() -> None:
    with pytest.raises(yaml.YAMLError, match="single document"):
        parse_yaml("rules: []\n---\nrules: []\n")
