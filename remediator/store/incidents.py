"""Queries over incidents, their alerts and their timelines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, case, func, select, update
from sqlalchemy.engine import Connection

from remediator.incidents.timeline import TimelineEntry
from remediator.store.dialect import upsert
from remediator.store.schema import incident_alerts, incidents, timeline


def open_by_keys(conn: Connection, keys: Iterable[str]) -> dict[str, Row[Any]]:
    """The unresolved incident of each key, locked for update where the database can."""
    wanted = sorted(set(keys))  # a fixed lock order keeps concurrent replicas deadlock-free
    if not wanted:
        return {}
    stmt = (
        select(incidents)
        .where(incidents.c.key.in_(wanted), incidents.c.resolved_at.is_(None))
        .order_by(incidents.c.key)
        .with_for_update()
    )
    return {row.key: row for row in conn.execute(stmt)}


def last_resolved_since(conn: Connection, keys: Iterable[str], since: datetime) -> dict[str, Any]:
    """For each key, its most recent incident resolved at or after `since`."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    stmt = (
        select(incidents.c.id, incidents.c.key, incidents.c.recurrence_count)
        .where(incidents.c.key.in_(wanted), incidents.c.resolved_at >= since)
        .order_by(incidents.c.resolved_at)
    )
    return {row.key: row for row in conn.execute(stmt)}  # later rows win


def insert_incidents(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert incidents (unresolved, so their keys are distinct); return id by key."""
    if not rows:
        return {}
    # Correlate by key rather than asking for parameter order: SQLite cannot promise the
    # order of a multi-row RETURNING, so SQLAlchemy would fall back to one INSERT per row.
    stmt = incidents.insert().returning(incidents.c.id, incidents.c.key)
    return {row.key: row.id for row in conn.execute(stmt, list(rows))}


def update_incident(conn: Connection, incident_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


def update_incidents(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write several incidents back in one statement; every row has the same keys + "id"."""
    if not rows:
        return
    columns = [key for key in rows[0] if key != "id"]
    stmt = (
        update(incidents)
        .where(incidents.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}") for name in columns})
    )
    conn.execute(stmt, [{f"b_{key}": value for key, value in row.items()} for row in rows])


def alerts_in_open_incidents(conn: Connection, fingerprints: Iterable[str]) -> list[Row[Any]]:
    """(incident_id, fingerprint, status, starts_at) of these alerts in unresolved incidents."""
    wanted = list(set(fingerprints))
    if not wanted:
        return []
    stmt = (
        select(
            incident_alerts.c.incident_id,
            incident_alerts.c.fingerprint,
            incident_alerts.c.status,
            incident_alerts.c.starts_at,
        )
        .join(incidents, incidents.c.id == incident_alerts.c.incident_id)
        .where(incident_alerts.c.fingerprint.in_(wanted), incidents.c.resolved_at.is_(None))
    )
    return list(conn.execute(stmt))


def upsert_incident_alerts(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Attach alerts to incidents, or refresh the state of ones already attached."""
    if not rows:
        return
    stmt = upsert(conn, incident_alerts)
    stmt = stmt.on_conflict_do_update(
        index_elements=["incident_id", "fingerprint"],
        set_={
            name: stmt.excluded[name]
            for name in ("status", "starts_at", "ends_at", "labels", "annotations", "last_seen_at")
        },
    )
    conn.execute(stmt, list(rows))


def alert_counts(conn: Connection, incident_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(alerts, firing alerts) per incident."""
    wanted = list(set(incident_ids))
    if not wanted:
        return {}
    firing = func.sum(case((incident_alerts.c.status == "firing", 1), else_=0))
    stmt = (
        select(incident_alerts.c.incident_id, func.count(), firing)
        .where(incident_alerts.c.incident_id.in_(wanted))
        .group_by(incident_alerts.c.incident_id)
    )
    return {row[0]: (int(row[1]), int(row[2] or 0)) for row in conn.execute(stmt)}


def append_timeline(conn: Connection, entries: Sequence[TimelineEntry]) -> None:
    if entries:
        conn.execute(timeline.insert(), [entry.row() for entry in entries])


def incidents_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, Row[Any]]:
    """Incidents by id, locked for update where the database can."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    stmt = select(incidents).where(incidents.c.id.in_(wanted)).order_by(incidents.c.id)
    return {row.id: row for row in conn.execute(stmt.with_for_update())}


def mark_alerts_resolved(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Set alerts resolved: rows of {incident_id, fingerprint, ends_at, last_seen_at}."""
    if not rows:
        return
    stmt = (
        update(incident_alerts)
        .where(
            incident_alerts.c.incident_id == bindparam("b_incident_id"),
            incident_alerts.c.fingerprint == bindparam("b_fingerprint"),
        )
        .values(status="resolved", ends_at=bindparam("b_ends_at"), last_seen_at=bindparam("b_seen"))
    )
    conn.execute(
        stmt,
        [
            {
                "b_incident_id": r["incident_id"],
                "b_fingerprint": r["fingerprint"],
                "b_ends_at": r["ends_at"],
                "b_seen": r["last_seen_at"],
            }
            for r in rows
        ],
    )


def get_incident(conn: Connection, incident_id: int, *, lock: bool = False) -> Row[Any] | None:
    stmt = select(incidents).where(incidents.c.id == incident_id)
    if lock:
        stmt = stmt.with_for_update()
    return (conn.execute(stmt)).first()


def list_incidents(
    conn: Connection,
    *,
    states: Sequence[str] = (),
    priorities: Sequence[str] = (),
    rules: Sequence[str] = (),
    before_id: int | None = None,
    limit: int = 50,
) -> list[Row[Any]]:
    """Newest first; `before_id` continues a previous page."""
    stmt = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
    if states:
        stmt = stmt.where(incidents.c.state.in_(states))
    if priorities:
        stmt = stmt.where(incidents.c.priority.in_(priorities))
    if rules:
        stmt = stmt.where(incidents.c.rule.in_(rules))
    if before_id is not None:
        stmt = stmt.where(incidents.c.id < before_id)
    return list(conn.execute(stmt))


def alerts_of(conn: Connection, incident_id: int) -> list[Row[Any]]:
    stmt = (
        select(incident_alerts)
        .where(incident_alerts.c.incident_id == incident_id)
        .order_by(incident_alerts.c.first_seen_at, incident_alerts.c.fingerprint)
    )
    return list(conn.execute(stmt))


def timeline_of(conn: Connection, incident_id: int) -> list[Row[Any]]:
    stmt = select(timeline).where(timeline.c.incident_id == incident_id).order_by(timeline.c.id)
    return list(conn.execute(stmt))


def count_unresolved(conn: Connection) -> list[tuple[str, str, int]]:
    """(state, priority, count) of every unresolved incident, for the metrics gauge."""
    stmt = (
        select(incidents.c.state, incidents.c.priority, func.count())
        .where(incidents.c.resolved_at.is_(None))
        .group_by(incidents.c.state, incidents.c.priority)
    )
    return [(row[0], row[1], int(row[2])) for row in conn.execute(stmt)]
