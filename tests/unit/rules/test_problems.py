"""Error locations and wording for `remediator check`."""

from __future__ import annotations

import pytest
import yaml

from remediator.errors import Problem
from remediator.rules.problems import format_loc, yaml_problem


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        ((), ""),
        (("rules",), "rules"),
        (("rules", 3, "match", 1), "rules[3].match[1]"),
        (("rules", 0, "incident", "group_by"), "rules[0].incident.group_by"),
    ],
)
def test_locations_read_like_paths(loc: tuple[str | int, ...], text: str) -> None:
    assert format_loc(loc) == text


def test_yaml_errors_keep_the_parsers_line_and_wording() -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        yaml.safe_load("a: 1\nb: [1, 2\n")
    problem = yaml_problem("r.yml", caught.value)
    assert problem.file == "r.yml"
    assert problem.line == 3
    assert problem.message.startswith("invalid YAML: expected ',' or ']'")
    assert "(while parsing a flow sequence)" in problem.message


def test_yaml_errors_without_a_position_use_line_one() -> None:
    assert yaml_problem("r.yml", yaml.YAMLError("boom")) == Problem(
        "r.yml", 1, "invalid YAML: boom"
    )
