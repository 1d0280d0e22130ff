"""The quality report's numbers equal the ones worked out by hand for a fixed history, on
SQLite and PostgreSQL (durations are computed by each database's own date arithmetic)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from remediator.reports.period import parse_period
from remediator.reports.quality import QualityReport, build_report
from remediator.store.database import Database
from tests.quality_history import (
    EXPECTED,
    EXPECTED_BY_PRIORITY,
    EXPECTED_BY_RULE,
    FROM,
    TO,
    load_history,
)


async def _report(database: Database, start_text: str = FROM, end_text: str = TO) -> QualityReport:
    await database.write(load_history)
    start, end = parse_period(start_text, end_text, datetime.now(UTC))
    return await build_report(database, start, end)


def _close(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, want in expected.items():
        got = actual[key]
        if isinstance(want, dict):
            _close(got, want)
        elif isinstance(want, float):
            assert got == pytest.approx(want, abs=1e-3), key
        else:
            assert got == want, key


async def test_overall_indicators_match_the_hand_computed_values(database: Database) -> None:
    report = (await _report(database)).model_dump()
    _close(report, EXPECTED)


async def test_per_priority_indicators_match(database: Database) -> None:
    report = await _report(database)
    by_priority = {p.priority: p.model_dump() for p in report.by_priority}
    assert list(by_priority) == ["P1", "P2", "P3", "P4"]
    for priority, expected in EXPECTED_BY_PRIORITY.items():
        _close(by_priority[priority], expected)


async def test_per_rule_effectiveness_matches_in_order(database: Database) -> None:
    report = await _report(database)
    assert [r.rule for r in report.by_rule] == [r["rule"] for r in EXPECTED_BY_RULE]
    for actual, expected in zip(report.by_rule, EXPECTED_BY_RULE, strict=True):
        _close(actual.model_dump(), expected)


async def test_the_series_has_one_bucket_per_day_with_the_day_s_incidents(
    database: Database,
) -> None:
    report = await _report(database)
    assert report.bucket_seconds == 86400
    assert len(report.series) == 7
    assert report.series[0].start == datetime(2026, 11, 1, tzinfo=UTC)
    day = report.series[1]
    assert (day.opened, day.auto_remediated, day.escalated, day.resolved) == (6, 2, 3, 5)
    assert sum(bucket.opened for bucket in report.series) == 6


async def test_an_empty_period_reports_no_data_rather_than_zero(database: Database) -> None:
    report = await _report(database, "2025-01-01", "2025-01-31")
    assert report.incidents == 0
    assert report.auto_remediation_rate is None
    assert report.mttr.median_seconds is None
    assert report.by_rule == []


async def test_a_short_period_is_charted_by_the_hour(database: Database) -> None:
    report = await _report(database, "2026-11-02T10:00:00Z", "2026-11-02T16:00:00Z")
    assert report.bucket_seconds == 3600
    assert [bucket.opened for bucket in report.series] == [1, 1, 1, 1, 1, 1]
