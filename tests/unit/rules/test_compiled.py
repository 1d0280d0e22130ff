"""Compiled rules: matching order, `on`, `continue`, incident keys and frozen actions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from remediator.incidents.priority import Priority
from remediator.rules.compiled import (
    MAX_INCIDENT_KEY_LENGTH,
    CompiledRule,
    RuleSet,
    compile_action,
    compile_rule,
)
from remediator.rules.matcher import Matcher
from remediator.rules.model import Rule, TemplateStr
from remediator.rules.templating import Template, render_context

LABEL_NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,4}", fullmatch=True)
TRICKY_VALUES = st.text(alphabet=st.sampled_from('ab,="\\\n/ '), max_size=6)


def make(name: str = "r", *match: str, **fields: Any) -> CompiledRule:
    data = {"name": name, "match": list(match) or ['alertname="X"'], **fields}
    return compile_rule(Rule.model_validate(data), f"rules.yml:{len(name)}")


def rule_set(*rules: CompiledRule) -> RuleSet:
    return RuleSet(rules=rules, files=("rules.yml",))


def names(rules: list[CompiledRule]) -> list[str]:
    return [rule.name for rule in rules]


def test_compile_rule_carries_every_field() -> None:
    compiled = make(
        "disk",
        'alertname="Disk"',
        'severity=~"critical|warning"',
        on="resolved",
        incident={"group_by": ["instance"], "priority": "P1", "title": "{{ labels.instance }}"},
        actions=[{"type": "log", "message": "hi {{ labels.instance }}"}],
        verify={"resolved_within": "10m"},
        escalate={"policy": "storage"},
        runbook="df -h",
        dry_run=True,
        **{"continue": True},
    )
    assert compiled.matchers == (
        Matcher("alertname", "=", "Disk"),
        Matcher("severity", "=~", "critical|warning"),
    )
    assert compiled.on == "resolved"
    assert compiled.group_by == ("instance",)
    assert compiled.priority is Priority.P1
    assert compiled.title == Template("{{ labels.instance }}")
    assert compiled.verify is not None
    assert compiled.verify.resolved_within == timedelta(minutes=10)
    assert compiled.escalate_policy == "storage"
    assert (compiled.runbook, compiled.continue_, compiled.dry_run) == ("df -h", True, True)
    assert compiled.source == "rules.yml:4"


def test_compiled_rules_are_immutable_and_hashable() -> None:
    compiled = make(actions=[{"type": "log", "message": "m"}])
    with pytest.raises(dataclasses.FrozenInstanceError):
        compiled.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        compiled.actions[0].params["message"] = "x"  # type: ignore[index]
    assert hash(compiled) == hash(make(actions=[{"type": "log", "message": "m"}]))


def test_log_action_params_hold_a_compiled_message() -> None:
    [action] = make(actions=[{"type": "log", "message": "pod {{ labels.pod }}"}]).actions
    assert action.type == "log"
    assert dict(action.params) == {
        "type": "log",
        "message": Template("pod {{ labels.pod }}"),
        "level": "info",
    }
    message = action.params["message"]
    assert isinstance(message, Template)
    assert message.render(render_context({"pod": "p1"}, {}, {}, {})) == "pod p1"


class Nested(BaseModel):
    note: TemplateStr
    plain: str


class RichAction(BaseModel):
    """An action kind with templates inside containers, as integrations will declare."""

    type: Literal["rich"]
    extra_vars: dict[str, TemplateStr]
    args: list[TemplateStr]
    maybe: TemplateStr | None = None
    nested: Nested
    timeout: timedelta


def test_templates_nested_in_containers_are_compiled_too() -> None:
    action = RichAction.model_validate(
        {
            "type": "rich",
            "extra_vars": {"host": "{{ labels.instance }}"},
            "args": ["--pod={{ labels.pod }}", "-v"],
            "maybe": "{{ labels.x }}",
            "nested": {"note": "{{ labels.y }}", "plain": "{{ not a template }}"},
            "timeout": timedelta(seconds=5),
        }
    )
    params = compile_action(action).params
    assert params["extra_vars"]["host"] == Template("{{ labels.instance }}")
    assert params["args"] == (Template("--pod={{ labels.pod }}"), Template("-v"))
    assert params["maybe"] == Template("{{ labels.x }}")
    assert params["nested"]["note"] == Template("{{ labels.y }}")
    assert params["nested"]["plain"] == "{{ not a template }}"
    assert params["timeout"] == timedelta(seconds=5)


def test_match_requires_every_matcher() -> None:
    compiled = make("r", 'alertname="X"', 'namespace="shop"')
    assert compiled.matches({"alertname": "X", "namespace": "shop", "pod": "p"})
    assert not compiled.matches({"alertname": "X", "namespace": "dev"})
    assert not compiled.matches({"alertname": "X"})


def test_first_match_wins_in_file_order() -> None:
    rules = rule_set(make("a", 'x="1"'), make("b", 'x="1"'), make("c", 'x="2"'))
    assert names(rules.match({"x": "1"}, "firing")) == ["a"]
    assert names(rules.match({"x": "2"}, "firing")) == ["c"]
    assert rules.match({"x": "3"}, "firing") == []


def test_continue_lets_later_rules_match_too() -> None:
    rules = rule_set(
        make("audit", 'x=~".*"', **{"continue": True}),
        make("a", 'x="1"'),
        make("b", 'x="1"'),
    )
    assert names(rules.match({"x": "1"}, "firing")) == ["audit", "a"]
    assert names(rules.match({"x": "2"}, "firing")) == ["audit"]


def test_on_selects_firing_or_resolved() -> None:
    rules = rule_set(make("down", 'x="1"'), make("up", 'x="1"', on="resolved"))
    assert names(rules.match({"x": "1"}, "firing")) == ["down"]
    assert names(rules.match({"x": "1"}, "resolved")) == ["up"]


def test_a_rule_for_the_other_status_does_not_stop_the_search() -> None:
    rules = rule_set(make("up", 'x="1"', on="resolved"), make("down", 'x="1"'))
    assert names(rules.match({"x": "1"}, "firing")) == ["down"]


def test_the_empty_rule_set_matches_nothing() -> None:
    assert RuleSet.empty().match({"alertname": "X"}, "firing") == []
    assert RuleSet.empty() == RuleSet(rules=(), files=())


def test_without_group_by_each_alert_is_its_own_incident() -> None:
    compiled = make("r")
    labels = {"alertname": "X", "pod": "p"}
    assert compiled.incident_key("8af3412abf78efa4", labels) == "r/fingerprint=8af3412abf78efa4"
    assert compiled.group_labels(labels) == labels


def test_group_by_keys_use_the_listed_labels_in_order() -> None:
    compiled = make("crash", incident={"group_by": ["namespace", "service"]})
    labels = {"service": "checkout", "namespace": "shop", "pod": "p1"}
    assert compiled.incident_key("fp", labels) == 'crash/namespace="shop",service="checkout"'
    assert compiled.group_labels(labels) == {"namespace": "shop", "service": "checkout"}


def test_a_missing_group_label_groups_as_empty() -> None:
    compiled = make("crash", incident={"group_by": ["service"]})
    assert compiled.incident_key("fp", {}) == 'crash/service=""'
    assert compiled.group_labels({}) == {"service": ""}


def test_an_empty_group_by_puts_all_alerts_of_the_rule_in_one_incident() -> None:
    compiled = make("r", incident={"group_by": []})
    assert compiled.incident_key("fp1", {"a": "1"}) == compiled.incident_key("fp2", {}) == "r/"
    assert compiled.group_labels({"a": "1"}) == {}


def test_values_are_escaped_so_keys_cannot_collide() -> None:
    compiled = make("r", incident={"group_by": ["a", "b"]})
    one = compiled.incident_key("fp", {"a": 'x",b="y', "b": ""})
    two = compiled.incident_key("fp", {"a": "x", "b": 'y",b="'})
    assert one != two
    assert one == 'r/a="x\\",b=\\"y",b=""'


def test_long_keys_are_hashed_and_stay_short() -> None:
    compiled = make("r", incident={"group_by": ["a"]})
    key = compiled.incident_key("fp", {"a": "x" * 600})
    assert key.startswith("r/sha256:")
    assert len(key) == len("r/sha256:") + 64
    assert key != compiled.incident_key("fp", {"a": "x" * 601})


@given(
    st.lists(LABEL_NAMES, min_size=1, max_size=4, unique=True),
    st.dictionaries(LABEL_NAMES, TRICKY_VALUES, max_size=5),
    st.data(),
)
def test_keys_are_equal_exactly_when_group_labels_are_equal(
    group_by: list[str], first: dict[str, str], data: st.DataObject
) -> None:
    # The second label set is a near copy (one label changed or dropped, or a non-grouped
    # label added) or an unrelated one, so both equal and different groups get exercised.
    second = dict(first)
    edit = data.draw(st.sampled_from(["change", "drop", "add-other", "unrelated"]))
    if edit == "change":
        second[data.draw(st.sampled_from(group_by))] = data.draw(TRICKY_VALUES)
    elif edit == "drop":
        second.pop(data.draw(st.sampled_from(group_by)), None)
    elif edit == "add-other":
        second["not_grouped_label"] = data.draw(TRICKY_VALUES)
    else:
        second = data.draw(st.dictionaries(LABEL_NAMES, TRICKY_VALUES, max_size=5))
    compiled = make("r", incident={"group_by": group_by})
    same_key = compiled.incident_key("fp", first) == compiled.incident_key("fp", second)
    assert same_key == (compiled.group_labels(first) == compiled.group_labels(second))


@given(
    st.lists(LABEL_NAMES, max_size=4, unique=True),
    st.dictionaries(LABEL_NAMES, st.text(max_size=300), max_size=6),
    st.randoms(use_true_random=False),
)
def test_keys_are_deterministic_and_bounded(
    group_by: list[str], labels: dict[str, str], rng: Any
) -> None:
    compiled = make("r" * 200, incident={"group_by": group_by})
    shuffled_items = list(labels.items())
    rng.shuffle(shuffled_items)
    shuffled: Mapping[str, str] = dict(shuffled_items)
    key = compiled.incident_key("fp", labels)
    assert key == compiled.incident_key("fp", shuffled)
    assert len(key) <= MAX_INCIDENT_KEY_LENGTH
    assert key.startswith("r" * 200 + "/")


@given(st.text(max_size=40), st.text(max_size=40))
def test_fingerprint_keys_are_injective(first: str, second: str) -> None:
    compiled = make("r")
    assert (compiled.incident_key(first, {}) == compiled.incident_key(second, {})) == (
        first == second
    )
