"""The rule file model: what it accepts, what it refuses, and the JSON Schema for editors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ValidationError

from remediator.incidents.priority import Priority
from remediator.rules.model import (
    ACTION_MODELS,
    LogAction,
    Rule,
    RuleFile,
    TemplateStr,
    rule_file_json_schema,
)


class HttpAction(BaseModel):
    """Stands in for an action kind that an integration registers later."""

    type: Literal["http"]
    url: str
    body: TemplateStr


@pytest.fixture
def http_registered() -> Iterator[None]:
    ACTION_MODELS["http"] = HttpAction
    yield
    del ACTION_MODELS["http"]


def rule(**fields: Any) -> dict[str, Any]:
    return {"name": "r", "match": ['alertname="X"'], **fields}


def errors(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        RuleFile.model_validate(data)
    return [(tuple(error["loc"]), error["msg"]) for error in caught.value.errors()]


def test_a_minimal_rule_gets_the_documented_defaults() -> None:
    parsed = Rule.model_validate(rule())
    assert parsed.on == "firing"
    assert parsed.incident.group_by is None
    assert parsed.incident.priority is None
    assert parsed.actions == []
    assert parsed.continue_ is False
    assert parsed.dry_run is None
    assert parsed.verify is None
    assert parsed.escalate is None


def test_a_full_rule_validates() -> None:
    parsed = Rule.model_validate(
        rule(
            description="d",
            on="resolved",
            incident={"group_by": ["alertname"], "priority": "P1", "title": "{{ labels.a }}"},
            actions=[{"type": "log", "message": "m", "level": "error"}],
            verify={"resolved_within": "5m"},
            escalate={"policy": "oncall"},
            runbook="r",
            dry_run=True,
            **{"continue": True},
        )
    )
    assert parsed.incident.priority is Priority.P1
    assert parsed.actions == [LogAction(type="log", message="m", level="error")]
    assert parsed.verify is not None
    assert parsed.verify.resolved_within == timedelta(minutes=5)
    assert parsed.continue_ is True


def test_continue_is_spelled_as_in_yaml() -> None:
    assert errors({"rules": [rule(continue_=True)]}) == [
        (("rules", 0, "continue_"), "Extra inputs are not permitted")
    ]


def test_every_level_forbids_unknown_keys() -> None:
    data = {
        "rules": [
            rule(
                actoins=[],
                incident={"groupby": []},
                actions=[{"type": "log", "message": "m", "lvl": "x"}],
                verify={"withn": "5m"},
            )
        ],
        "groups": [],
    }
    locs = {loc for loc, _msg in errors(data)}
    assert locs == {
        ("rules", 0, "actoins"),
        ("rules", 0, "incident", "groupby"),
        ("rules", 0, "actions", 0, "lvl"),
        ("rules", 0, "verify", "withn"),
        ("groups",),
    }


def test_a_bad_matcher_points_at_its_list_item() -> None:
    [(loc, msg)] = errors({"rules": [rule(match=['alertname="X"', "severity: critical"])]})
    assert loc == ("rules", 0, "match", 1)
    assert msg.startswith("invalid matcher 'severity: critical'")


def test_match_needs_at_least_one_matcher() -> None:
    [(loc, _msg)] = errors({"rules": [rule(match=[])]})
    assert loc == ("rules", 0, "match")


@pytest.mark.parametrize("name", ["has space", "", "ünï", "a/b", "x" * 201])
def test_rule_names_are_restricted(name: str) -> None:
    [(loc, _msg)] = errors({"rules": [rule(name=name)]})
    assert loc == ("rules", 0, "name")


def test_rule_names_allow_the_documented_characters() -> None:
    assert Rule.model_validate(rule(name="Disk_full.v2:db-1")).name == "Disk_full.v2:db-1"


def test_group_by_entries_must_be_label_names_listed_once() -> None:
    [(loc, _msg)] = errors({"rules": [rule(incident={"group_by": ["ok", "not-a-label"]})]})
    assert loc == ("rules", 0, "incident", "group_by", 1)
    [(loc, msg)] = errors({"rules": [rule(incident={"group_by": ["a", "b", "a"]})]})
    assert loc == ("rules", 0, "incident", "group_by")
    assert "'a' more than once" in msg


def test_template_syntax_errors_point_at_the_field() -> None:
    data = {
        "rules": [
            rule(
                incident={"title": "{{ labels.a }"},
                actions=[{"type": "log", "message": "{% if %}"}],
            )
        ]
    }
    found = errors(data)
    assert [loc for loc, _msg in found] == [
        ("rules", 0, "incident", "title"),
        ("rules", 0, "actions", 0, "message"),
    ]
    assert all(msg.startswith("invalid template: syntax error") for _loc, msg in found)


def test_an_unknown_action_type_names_the_known_ones() -> None:
    [(loc, msg)] = errors({"rules": [rule(actions=[{"type": "restart-pod", "pod": "p"}])]})
    assert loc == ("rules", 0, "actions", 0, "type")
    assert (
        msg == "unknown action type 'restart-pod'; known types: ansible, awx, http, kubernetes, log"
    )


@pytest.mark.parametrize("action", [{"message": "m"}, "log", None])
def test_an_action_needs_a_mapping_with_a_type(action: Any) -> None:
    [(loc, msg)] = errors({"rules": [rule(actions=[action])]})
    assert loc == ("rules", 0, "actions", 0)
    assert "known types: ansible, awx, http, kubernetes, log" in msg


def test_errors_inside_an_action_keep_their_path() -> None:
    found = errors({"rules": [rule(actions=[{"type": "log", "level": "loud"}])]})
    assert sorted(loc for loc, _msg in found) == [
        ("rules", 0, "actions", 0, "level"),
        ("rules", 0, "actions", 0, "message"),
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("on", "fired"),
        ("incident", {"priority": "P0"}),
        ("verify", {"resolved_within": "5 minutes"}),
        ("escalate", {"policy": ""}),
        ("dry_run", "maybe"),
    ],
)
def test_invalid_values_are_refused(field: str, value: Any) -> None:
    assert errors({"rules": [rule(**{field: value})]})


def test_registered_action_kinds_validate_without_touching_the_rule_model(
    http_registered: None,
) -> None:
    parsed = Rule.model_validate(rule(actions=[{"type": "http", "url": "u", "body": "b"}]))
    assert parsed.actions == [HttpAction(type="http", url="u", body="b")]
    [(_loc, msg)] = errors({"rules": [rule(actions=[{"type": "nope"}])]})
    assert msg == "unknown action type 'nope'; known types: ansible, awx, http, kubernetes, log"


def test_schema_offers_every_action_kind_by_type(http_registered: None) -> None:
    schema = rule_file_json_schema()
    actions = schema["$defs"]["Rule"]["properties"]["actions"]["items"]
    assert actions["discriminator"]["propertyName"] == "type"
    # The core's own kinds and those of the installed executor plugins.
    assert set(actions["discriminator"]["mapping"]) == {
        "log",
        "http",
        "ansible",
        "awx",
        "kubernetes",
    }
    assert schema["$defs"]["LogAction"]["properties"]["type"]["const"] == "log"


def test_schema_uses_the_yaml_spelling_and_forbids_unknown_keys() -> None:
    schema = rule_file_json_schema()
    rule_schema = schema["$defs"]["Rule"]
    assert {"on", "continue", "match", "actions"} <= set(rule_schema["properties"])
    assert "continue_" not in rule_schema["properties"]
    assert rule_schema["additionalProperties"] is False
    assert schema["required"] == ["rules"]
    assert schema["$schema"].startswith("https://json-schema.org/")


def test_schema_describes_fields_for_editor_hover() -> None:
    properties = rule_file_json_schema()["$defs"]["Rule"]["properties"]
    assert "Alertmanager matchers" in properties["match"]["description"]
    assert properties["match"]["minItems"] == 1
    assert properties["match"]["items"]["examples"]


def test_a_promql_check_takes_its_window_and_interval() -> None:
    verify = {"promql": "up{instance={{ labels.instance }}} == 0", "within": "2m"}
    spec = Rule.model_validate(rule(verify=verify)).verify
    assert spec is not None
    assert (spec.within, spec.interval) == (timedelta(minutes=2), timedelta(seconds=30))


@pytest.mark.parametrize(
    ("verify", "message"),
    [
        ({"promql": 'up{instance="{{ labels.instance }}"} == 0'}, "remediator quotes every"),
        ({"promql": "up{instance='{{ labels.instance }}'}"}, "not instance="),
        ({"promql": "up{{ labels.x"}, "invalid template"),
        ({"promql": "up == 0", "within": "10s", "interval": "1m"}, "longer than the window (10s)"),
        ({"promql": "up == 0", "interval": "500ms"}, "at least 1s"),
        ({"resolved_within": "5m", "within": "1m"}, "apply only to a promql check"),
        ({"resolved_within": "5m", "interval": "1m"}, "apply only to a promql check"),
    ],
)
def test_promql_checks_are_validated(verify: dict[str, str], message: str) -> None:
    found = errors({"rules": [rule(verify=verify)]})
    assert any(message in text for _, text in found), found
