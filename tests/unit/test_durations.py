"""Prometheus-style durations in YAML."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(days=7)),
        ("250ms", timedelta(milliseconds=250)),
        ("0", timedelta(0)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "1m1h", "5 m", "-5m", "1.5h", "soon"])
def test_invalid_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="Prometheus duration such as 30s, 5m"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_format_round_trips(millis: int) -> None:
    value = timedelta(milliseconds=millis)
    assert parse_duration(format_duration(value)) == value
