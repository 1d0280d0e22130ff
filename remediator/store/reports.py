"""The reads the quality report makes, shaped so that the database does the work.

One grouped pass over the covering index `ix_incidents_quality` counts and collects the
durations; durations are the incidents' stored `response_seconds` / `resolve_seconds`, so no
date arithmetic runs per incident. Results are taken straight from the driver (`_plain`):
SQLAlchemy's Row objects cost more than these queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.engine import Connection

from remediator.store.schema import incidents, remediation_jobs

_c = incidents.c


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Incidents opened in a period with the same (priority, rule, bucket): their counts and
    the durations the percentiles need (unsorted)."""

    priority: str
    rule: str | None
    bucket: str  # see `bucket_start`
    counts: tuple[int, ...]  # incidents, escalated, recurred, ack_breached, resolve_breached,
    # breached (either), paged, resolved, auto (resolved by automation)
    resolve_seconds: list[float]
    response_seconds: list[float]  # of those that paged a human and got a response


def outcomes(
    conn: Connection, start: datetime, end: datetime, bucket_seconds: int
) -> list[Outcomes]:
    """Incidents opened in [start, end), grouped per (priority, rule, bucket), in one pass
    over the covering index: the database counts, and hands each group's durations over as
    one list (SQLite: a comma-joined text; PostgreSQL: an array), so no row per incident
    reaches Python."""
    bucket = _bucket(conn, bucket_seconds).label("bucket")
    automation = case((_c.resolution == "automation", 1))  # NULL otherwise: not counted
    paged_response = case((_c.paged_at.is_not(None), _c.response_seconds))
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
            _collect(conn, _c.resolve_seconds),
            _collect(conn, paged_response),
        )
        .where(*_opened_within(start, end))
        .group_by(bucket, _c.priority, _c.rule)
    )
    return [
        Outcomes(row[0], row[1], row[2], tuple(row[3:12]), _floats(row[12]), _floats(row[13]))
        for row in _plain(conn, statement)
    ]


def _opened_within(start: datetime, end: datetime) -> tuple[ColumnElement[bool], ...]:
    """Opened in [start, end), spelled so the range is read from `ix_incidents_quality` in
    (day, priority, rule) order: the days bound the index range, the times cut its ends."""
    first, last = (moment.astimezone(UTC).strftime("%Y-%m-%d") for moment in (start, end))
    return (
        _c.opened_day >= first,
        _c.opened_day <= last,
        _c.opened_at >= start,
        _c.opened_at < end,
    )


def _collect(conn: Connection, column: Any) -> Any:
    """A group's non-NULL values of `column` as one value."""
    if conn.dialect.name == "postgresql":
        return func.array_agg(column).filter(column.is_not(None))
    return func.group_concat(column)  # skips NULLs; REAL prints with 15 significant digits


def _floats(values: str | list[float] | None) -> list[float]:
    if not values:
        return []
    if isinstance(values, str):
        return list(map(float, values.split(",")))
    return [float(v) for v in values]


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
    """The UTC day (`2026-11-02`, the stored `opened_day`) or, for hourly buckets, hour
    (`2026-11-02 10`) the incident opened in; weekly buckets are made of days by the caller."""
    if bucket_seconds >= 86400:
        return _c.opened_day
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", _c.opened_at), "YYYY-MM-DD HH24")
    return func.substr(_c.opened_at, 1, 13)  # SQLite stores UTC text: its first 13 characters
