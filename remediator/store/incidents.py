"""Queries over incidents, their alerts and their timelines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from remediator.incidents.timeline import TimelineEntry
from remediator.store.dialect import upsert
from remediator.store.schema import incident_alerts, incidents, timeline


async def open_by_keys(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, Row[Any]]:
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
    return {row.key: row for row in await conn.execute(stmt)}


async def last_resolved_since(
    conn: AsyncConnection, keys: Iterable[str], since: datetime
) -> dict[str, Any]:
    """For each key, its most recent incident resolved at or after `since`."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    stmt = (
        select(incidents.c.id, incidents.c.key, incidents.c.recurrence_count)
        .where(incidents.c.key.in_(wanted), incidents.c.resolved_at >= since)
        .order_by(incidents.c.resolved_at)
    )
    return {row.key: row for row in await conn.execute(stmt)}  # later rows win


async def insert_incidents(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert incidents; return their ids in the order given."""
    if not rows:
        return []
    stmt = incidents.insert().returning(incidents.c.id, sort_by_parameter_order=True)
    return [row.id for row in await conn.execute(stmt, list(rows))]


async def update_incident(conn: AsyncConnection, incident_id: int, values: dict[str, Any]) -> None:
    await conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


async def alerts_in_open_incidents(
    conn: AsyncConnection, fingerprints: Iterable[str]
) -> list[Row[Any]]:
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
    return list(await conn.execute(stmt))


async def upsert_incident_alerts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
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
    await conn.execute(stmt, list(rows))


async def alert_counts(
    conn: AsyncConnection, incident_ids: Iterable[int]
) -> dict[int, tuple[int, int]]:
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
    return {row[0]: (int(row[1]), int(row[2] or 0)) for row in await conn.execute(stmt)}


async def append_timeline(conn: AsyncConnection, entries: Sequence[TimelineEntry]) -> None:
    if entries:
        await conn.execute(timeline.insert(), [entry.row() for entry in entries])


async def incidents_by_ids(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, Row[Any]]:
    """Incidents by id, locked for update where the database can."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    stmt = select(incidents).where(incidents.c.id.in_(wanted)).order_by(incidents.c.id)
    return {row.id: row for row in await conn.execute(stmt.with_for_update())}


async def mark_alerts_resolved(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
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
    await conn.execute(
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


async def get_incident(
    conn: AsyncConnection, incident_id: int, *, lock: bool = False
) -> Row[Any] | None:
    stmt = select(incidents).where(incidents.c.id == incident_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def list_incidents(
    conn: AsyncConnection,
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
    return list(await conn.execute(stmt))


async def alerts_of(conn: AsyncConnection, incident_id: int) -> list[Row[Any]]:
    stmt = (
        select(incident_alerts)
        .where(incident_alerts.c.incident_id == incident_id)
        .order_by(incident_alerts.c.first_seen_at, incident_alerts.c.fingerprint)
    )
    return list(await conn.execute(stmt))


async def timeline_of(conn: AsyncConnection, incident_id: int) -> list[Row[Any]]:
    stmt = select(timeline).where(timeline.c.incident_id == incident_id).order_by(timeline.c.id)
    return list(await conn.execute(stmt))


async def count_unresolved(conn: AsyncConnection) -> list[tuple[str, str, int]]:
    """(state, priority, count) of every unresolved incident, for the metrics gauge."""
    stmt = (
        select(incidents.c.state, incidents.c.priority, func.count())
        .where(incidents.c.resolved_at.is_(None))
        .group_by(incidents.c.state, incidents.c.priority)
    )
    return [(row[0], row[1], int(row[2])) for row in await conn.execute(stmt)]
