"""The few reads the quality report makes: compact rows, with durations computed in SQL.

Times come back as seconds (floats), not datetimes: a report over a hundred thousand
incidents would otherwise spend most of its time building datetime objects it only subtracts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, func, literal_column, select
from sqlalchemy.engine import Connection

from remediator.store.schema import incidents, remediation_jobs

_UNIX_EPOCH_JULIAN_DAY = 2440587.5


def incident_facts(conn: Connection, start: datetime, end: datetime) -> list[Any]:
    """One row per incident opened in [start, end): what the quality indicators are made of.

    Columns: priority, rule, opened (epoch s), ack_after, resolved_after, paged, escalated,
    resolution, ack_breached, resolve_breached, recurred. `*_after` are seconds after opening
    (NULL when it did not happen); flags are 0/1.
    """
    epoch = _epoch_seconds(conn)
    c = incidents.c
    statement = select(
        c.priority,
        c.rule,
        epoch(c.opened_at).label("opened"),
        (epoch(_first_response()) - epoch(c.opened_at)).label("ack_after"),
        (epoch(c.resolved_at) - epoch(c.opened_at)).label("resolved_after"),
        c.paged_at.is_not(None).label("paged"),
        c.escalated_at.is_not(None).label("escalated"),
        c.resolution,
        c.ack_breached_at.is_not(None).label("ack_breached"),
        c.resolve_breached_at.is_not(None).label("resolve_breached"),
        c.previous_incident_id.is_not(None).label("recurred"),
    ).where(c.opened_at >= start, c.opened_at < end)
    return list(conn.execute(statement))


def job_counts(conn: Connection, start: datetime, end: datetime) -> list[Any]:
    """Remediation jobs of incidents opened in [start, end), counted by rule, state, dry run."""
    j, i = remediation_jobs.c, incidents.c
    statement = (
        select(j.rule, j.state, j.dry_run, func.count().label("jobs"))
        .select_from(remediation_jobs.join(incidents, i.id == j.incident_id))
        .where(and_(i.opened_at >= start, i.opened_at < end))
        .group_by(j.rule, j.state, j.dry_run)
    )
    return list(conn.execute(statement))


def _first_response() -> ColumnElement[Any]:
    """When a human first answered: acknowledged, or resolved by hand without acknowledging."""
    c = incidents.c
    return case(
        (c.acknowledged_at.is_not(None), c.acknowledged_at),
        (c.resolution == "human", c.resolved_at),
        else_=None,
    )


def _epoch_seconds(conn: Connection) -> Any:
    """Seconds since 1970 of a timestamp column, spelled for this database."""
    if conn.dialect.name == "postgresql":
        return lambda column: func.extract("epoch", column).cast(Float)
    # SQLite keeps UTC text; julianday() reads it (a double: sub-millisecond precision).
    return lambda column: (
        (func.julianday(column) - _UNIX_EPOCH_JULIAN_DAY) * literal_column("86400.0")
    )
