"""Report periods as users type them: dates, RFC 3339 times, defaults, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from remediator.reports.period import parse_period

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_dates_cover_whole_days_with_to_included() -> None:
    assert parse_period("2026-11-01", "2026-11-07", NOW) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 8, tzinfo=UTC),
    )


def test_times_with_offsets_become_utc() -> None:
    start, end = parse_period("2026-11-01T01:00:00+01:00", "2026-11-02T00:00:00Z", NOW)
    assert start == datetime(2026, 11, 1, tzinfo=UTC)
    assert end == datetime(2026, 11, 2, tzinfo=UTC)


def test_without_bounds_the_last_30_days() -> None:
    assert parse_period(None, None, NOW) == (NOW - timedelta(days=30), NOW)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("yesterday", None, "from='yesterday' is not a date"),
        (None, "2026-13-01", "to='2026-13-01' is not a date"),
        ("2026-11-01T00:00:00", None, "has no time zone"),
        ("2026-11-05", "2026-11-01", "must be before to"),
        ("2020-01-01", "2026-01-01", "longer than 3 years"),
    ],
)
def test_bad_input_names_the_parameter(start: str | None, end: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_period(start, end, NOW)
