"""Matchers behave like Alertmanager's: syntax, anchoring, missing labels, errors."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.rules.matcher import Matcher, MatcherSyntaxError, parse_matcher

LABEL_NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True)
VALUES = st.text(alphabet=st.sampled_from('ab1 ,="\\\n|.*{}é'), max_size=8)
REGEXES = st.one_of(
    VALUES.map(re.escape),
    st.sampled_from(["", ".*", ".+", "a|b", "[0-9]+", "(?i)AB.*", "a?b?", "é+", '"x"']),
)


@st.composite
def label_sets(draw: st.DrawFn, name: str) -> dict[str, str]:
    """Label sets that sometimes carry `name`, sometimes not."""
    labels = draw(st.dictionaries(LABEL_NAMES, VALUES, max_size=4))
    if draw(st.booleans()):
        labels[name] = draw(VALUES)
    return labels


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('alertname="KubePodCrashLooping"', Matcher("alertname", "=", "KubePodCrashLooping")),
        ('severity=~"critical|warning"', Matcher("severity", "=~", "critical|warning")),
        ('team!=""', Matcher("team", "!=", "")),
        ('env!~"dev|staging"', Matcher("env", "!~", "dev|staging")),
        ("alertname=Foo", Matcher("alertname", "=", "Foo")),
        ('  job  =~  "api.*"  ', Matcher("job", "=~", "api.*")),
        ('msg="say \\"hi\\""', Matcher("msg", "=", 'say "hi"')),
        ('path="C:\\\\tmp"', Matcher("path", "=", "C:\\tmp")),
        ('text="a\\nb"', Matcher("text", "=", "a\nb")),
        ('instance=~"db-\\d+"', Matcher("instance", "=~", "db-\\d+")),
        ('url="a=b"', Matcher("url", "=", "a=b")),
        ("empty=", Matcher("empty", "=", "")),
    ],
)
def test_parses_the_forms_alertmanager_accepts(text: str, expected: Matcher) -> None:
    assert parse_matcher(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "it is empty"),
        ("alertname", "no operator found"),
        ('="x"', "label name is missing"),
        ('1abc="x"', "'1abc' is not a valid label name"),
        ('my-label="x"', "'my-label' is not a valid label name"),
        ('a="b', 'opening " but no closing "'),
        ('a="b"c"', 'unescaped "'),
        ('a=b"', 'unescaped "'),
        ('a=~"(unclosed"', "invalid regular expression"),
    ],
)
def test_syntax_errors_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(MatcherSyntaxError) as caught:
        parse_matcher(text)
    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_shape_errors_show_the_accepted_form() -> None:
    with pytest.raises(MatcherSyntaxError, match=r'use name="value", name!="value"'):
        parse_matcher("severity: critical")


def test_unknown_operator_is_refused() -> None:
    with pytest.raises(MatcherSyntaxError, match="unknown operator"):
        Matcher("a", "==", "b")


def test_regexes_are_fully_anchored() -> None:
    matcher = parse_matcher('severity=~"crit"')
    assert not matcher.matches({"severity": "critical"})
    assert not matcher.matches({"severity": "hypercrit"})
    assert matcher.matches({"severity": "crit"})
    assert not parse_matcher('a=~"x"').matches({"a": "x\n"})


def test_alternation_is_anchored_as_a_whole() -> None:
    matcher = parse_matcher('severity=~"critical|warning"')
    assert matcher.matches({"severity": "warning"})
    assert not matcher.matches({"severity": "critical-ish"})
    assert not matcher.matches({"severity": "not-warning"})


def test_a_missing_label_equals_the_empty_string() -> None:
    assert parse_matcher('team=""').matches({"alertname": "X"})
    assert not parse_matcher('team!=""').matches({"alertname": "X"})
    assert parse_matcher('team=~".*"').matches({})
    assert not parse_matcher('team=~".+"').matches({})
    assert parse_matcher('team!~"ops"').matches({})


def test_leading_inline_flags_work() -> None:
    assert parse_matcher('severity=~"(?i)CRITICAL"').matches({"severity": "critical"})


def test_digit_classes_are_ascii_only_like_re2() -> None:
    assert not parse_matcher('n=~"\\d+"').matches({"n": "٣"})  # Arabic-Indic three


def test_str_is_the_canonical_alertmanager_form() -> None:
    assert str(parse_matcher("severity =~ critical|warning")) == 'severity=~"critical|warning"'
    assert str(Matcher("msg", "=", 'say "hi"\\\n')) == 'msg="say \\"hi\\"\\\\\\n"'


def test_compiled_regex_is_not_part_of_equality_or_repr() -> None:
    assert parse_matcher('a=~"x"') == Matcher("a", "=~", "x")
    assert repr(Matcher("a", "=~", "x")) == "Matcher(name='a', op='=~', value='x')"
    assert hash(Matcher("a", "=~", "x")) == hash(parse_matcher('a =~ "x"'))


@given(LABEL_NAMES, VALUES, st.data())
def test_equal_and_not_equal_are_exact_opposites(
    name: str, value: str, data: st.DataObject
) -> None:
    labels = data.draw(label_sets(name))
    assert Matcher(name, "=", value).matches(labels) != Matcher(name, "!=", value).matches(labels)


@given(LABEL_NAMES, REGEXES, st.data())
def test_regex_and_negated_regex_are_exact_opposites(
    name: str, regex: str, data: st.DataObject
) -> None:
    labels = data.draw(label_sets(name))
    assert Matcher(name, "=~", regex).matches(labels) != Matcher(name, "!~", regex).matches(labels)


@given(LABEL_NAMES, VALUES)
def test_an_escaped_value_as_regex_matches_exactly_that_value(name: str, value: str) -> None:
    matcher = Matcher(name, "=~", re.escape(value))
    assert matcher.matches({name: value})
    assert not matcher.matches({name: value + "x"})


@given(LABEL_NAMES, st.sampled_from(["=", "!="]), VALUES)
def test_str_round_trips_through_the_parser(name: str, op: str, value: str) -> None:
    matcher = Matcher(name, op, value)
    assert parse_matcher(str(matcher)) == matcher


@given(LABEL_NAMES, st.sampled_from(["=~", "!~"]), REGEXES)
def test_str_round_trips_regex_matchers(name: str, op: str, regex: str) -> None:
    matcher = Matcher(name, op, regex)
    assert parse_matcher(str(matcher)) == matcher
