"""Known resolutions: what humans said fixed incidents, found again by rule and key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.engine import Connection

from remediator.store.schema import known_resolutions


def record(conn: Connection, incident: Any, note: str, resolved_by: str, now: datetime) -> None:
    conn.execute(
        known_resolutions.insert().values(
            incident_id=incident.id,
            rule=incident.rule,
            incident_key=incident.key,
            note=note,
            resolved_by=resolved_by,
            at=now,
        )
    )


def recent_for(conn: Connection, incident: Any, limit: int = 3) -> list[Any]:
    """The latest resolutions of earlier incidents like this one: the same key first (the
    same service, host or mountpoint), then the same rule."""
    table = known_resolutions
    same = table.c.incident_key == incident.key
    if incident.rule is not None:
        same = same | (table.c.rule == incident.rule)
    stmt = (
        select(table)
        .where(same, table.c.incident_id != incident.id)
        .order_by(case((table.c.incident_key == incident.key, 0), else_=1), table.c.at.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt))
