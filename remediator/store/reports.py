"""The reads the quality report makes, shaped so that the database does the counting.

Large results are taken straight from the driver (see `_plain`). Durations are the
incidents' stored `response_seconds` / `resolve_seconds`, so no date arithmetic runs per row;
every column read is in the covering index `ix_incidents_quality`.

Counts come back already grouped (by priority, rule and chart bucket); only the durations
that percentiles need come back one per incident, as plain numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.engine import Connection

from remediator.store.schema import incidents, remediation_jobs

_c = incidents.c


def outcome_counts(
    conn: Connection, start: datetime, end: datetime, bucket_seconds: int
) -> list[tuple[Any, ...]]:
    """Incidents opened in [start, end), counted per (priority, rule, bucket).

    Columns: priority, rule, bucket (see `bucket_start`), incidents, escalated, recurred,
    ack_breached, resolve_breached, breached (either), paged, resolved, auto (resolved by
    automation).
    """
    bucket = _bucket(conn, bucket_seconds).label("bucket")
    automation = case((_c.resolution == "automation", 1))  # NULL otherwise: not counted
    statement = (
        select(
            _c.priority,
            _c.rule,
            bucket,
            func.count(),
            # count(column) counts its non-NULL values: cheaper than summing CASEs.
            func.count(_c.escalated_at),
            func.count(_c.previous_incident_id),
            func.count(_c.ack_breached_at),
            func.count(_c.resolve_breached_at),
            func.count(func.coalesce(_c.ack_breached_at, _c.resolve_breached_at)),
            func.count(_c.paged_at),
            func.count(_c.resolve_seconds),
            func.count(automation),
        )
        .where(_c.opened_at >= start, _c.opened_at < end)
        .group_by(bucket, _c.priority, _c.rule)
    )
    return _plain(conn, statement)


def resolve_times(
    conn: Connection, start: datetime, end: datetime, bucket_seconds: int
) -> list[tuple[Any, ...]]:
    """(priority, rule, bucket, seconds from opening to resolution) of each resolved incident
    opened in [start, end)."""
    statement = select(
        _c.priority, _c.rule, _bucket(conn, bucket_seconds), _c.resolve_seconds
    ).where(_c.opened_at >= start, _c.opened_at < end, _c.resolve_seconds.is_not(None))
    return _plain(conn, statement)


def response_times(conn: Connection, start: datetime, end: datetime) -> list[float]:
    """Seconds from opening to the first human response, for incidents opened in [start, end)
    that paged a human and got one (acknowledged, or resolved by hand)."""
    statement = select(_c.response_seconds).where(
        _c.opened_at >= start,
        _c.opened_at < end,
        _c.paged_at.is_not(None),
        _c.response_seconds.is_not(None),
    )
    return [float(row[0]) for row in _plain(conn, statement)]


def job_counts(conn: Connection, start: datetime, end: datetime) -> list[Any]:
    """Remediation jobs queued in [start, end), counted by rule, state and dry run."""
    j = remediation_jobs.c
    statement = (
        select(j.rule, j.state, j.dry_run, func.count().label("jobs"))
        .where(j.created_at >= start, j.created_at < end)
        .group_by(j.rule, j.state, j.dry_run)
    )
    return list(conn.execute(statement).all())


def _plain(conn: Connection, statement: Any) -> list[tuple[Any, ...]]:
    """The rows as the driver returns them: SQLAlchemy's Row objects cost more than the query
    over a hundred thousand incidents, and these columns need no type processing."""
    return list(conn.execute(statement).cursor.fetchall())


def bucket_start(key: str) -> datetime:
    """The UTC start of a bucket key these queries return (`2026-11-02` or `2026-11-02 10`)."""
    text = f"{key}:00" if len(key) == 13 else key
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _bucket(conn: Connection, bucket_seconds: int) -> ColumnElement[Any]:
    """The UTC hour (`2026-11-02 10`) or day (`2026-11-02`) the incident opened in: hours for
    hourly buckets, days otherwise (weekly buckets are made of days by the caller). Cut from
    SQLite's stored text, so no date arithmetic runs per row."""
    hourly = bucket_seconds < 86400
    if conn.dialect.name == "postgresql":
        utc = func.timezone("UTC", _c.opened_at)
        return func.to_char(utc, "YYYY-MM-DD HH24" if hourly else "YYYY-MM-DD")
    return func.substr(_c.opened_at, 1, 13 if hourly else 10)
