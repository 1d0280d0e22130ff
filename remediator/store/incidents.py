"""Queries over incidents, their alerts and their timelines.

The statements the intake runs on every commit are built once, with expanding bind
parameters for their IN lists: building a statement and coercing each listed value costs
more Python time than SQLite spends running it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cache
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
    return {row.key: row for row in conn.execute(_OPEN_BY_KEYS, {"keys": wanted})}


_OPEN_BY_KEYS = (
    select(incidents)
    .where(
        incidents.c.key.in_(bindparam("keys", expanding=True)), incidents.c.resolved_at.is_(None)
    )
    .order_by(incidents.c.key)
    .with_for_update()
)


def last_resolved_since(conn: Connection, keys: Iterable[str], since: datetime) -> dict[str, Any]:
    """For each key, its most recent incident resolved at or after `since`."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    rows = conn.execute(_LAST_RESOLVED_SINCE, {"keys": wanted, "since": since})
    return {row.key: row for row in rows}  # later rows win


_LAST_RESOLVED_SINCE = (
    select(incidents.c.id, incidents.c.key, incidents.c.recurrence_count)
    .where(
        incidents.c.key.in_(bindparam("keys", expanding=True)),
        incidents.c.resolved_at >= bindparam("since"),
    )
    .order_by(incidents.c.resolved_at)
)


def insert_incidents(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert incidents (unresolved, so their keys are distinct); return id by key."""
    if not rows:
        return {}
    # Correlate by key rather than asking for parameter order: SQLite cannot promise the
    # order of a multi-row RETURNING, so SQLAlchemy would fall back to one INSERT per row.
    return {row.key: row.id for row in conn.execute(_INSERT_INCIDENTS, list(rows))}


_INSERT_INCIDENTS = incidents.insert().returning(incidents.c.id, incidents.c.key)


def update_incident(conn: Connection, incident_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


def seconds_since(opened_at: datetime, now: datetime) -> float:
    """The value of `response_seconds` / `resolve_seconds` for something happening `now`."""
    return max((now - opened_at).total_seconds(), 0.0)


def mark_first(conn: Connection, incident_id: int, column: str, now: datetime) -> None:
    """Set `paged_at` or `escalated_at` the first time it happens; later calls keep it."""
    target = incidents.c[column]
    conn.execute(
        update(incidents)
        .where(incidents.c.id == incident_id, target.is_(None))
        .values({target: now})
    )


def update_incidents(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write several incidents back in one statement; every row has the same keys + "id"."""
    if not rows:
        return
    stmt = _update_incidents(tuple(key for key in rows[0] if key != "id"))
    conn.execute(stmt, [{f"b_{key}": value for key, value in row.items()} for row in rows])


@cache
def _update_incidents(columns: tuple[str, ...]) -> Any:
    return (
        update(incidents)
        .where(incidents.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}") for name in columns})
    )


def alerts_in_open_incidents(conn: Connection, fingerprints: Iterable[str]) -> list[Row[Any]]:
    """(incident_id, fingerprint, status, starts_at) of these alerts in unresolved incidents."""
    wanted = list(set(fingerprints))
    if not wanted:
        return []
    return list(conn.execute(_ALERTS_IN_OPEN_INCIDENTS, {"fingerprints": wanted}))


_ALERTS_IN_OPEN_INCIDENTS = (
    select(
        incident_alerts.c.incident_id,
        incident_alerts.c.fingerprint,
        incident_alerts.c.status,
        incident_alerts.c.starts_at,
    )
    .join(incidents, incidents.c.id == incident_alerts.c.incident_id)
    .where(
        incident_alerts.c.fingerprint.in_(bindparam("fingerprints", expanding=True)),
        incidents.c.resolved_at.is_(None),
    )
)


def upsert_incident_alerts(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Attach alerts to incidents, or refresh the state of ones already attached."""
    if not rows:
        return
    conn.execute(_upsert_incident_alerts(conn.dialect.name), list(rows))


@cache
def _upsert_incident_alerts(dialect: str) -> Any:
    stmt = upsert(dialect, incident_alerts)
    return stmt.on_conflict_do_update(
        index_elements=["incident_id", "fingerprint"],
        set_={
            name: stmt.excluded[name]
            for name in ("status", "starts_at", "ends_at", "labels", "annotations", "last_seen_at")
        },
    )


def alert_counts(conn: Connection, incident_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(alerts, firing alerts) per incident."""
    wanted = list(set(incident_ids))
    if not wanted:
        return {}
    rows = conn.execute(_ALERT_COUNTS, {"ids": wanted})
    return {row[0]: (int(row[1]), int(row[2] or 0)) for row in rows}


_ALERT_COUNTS = (
    select(
        incident_alerts.c.incident_id,
        func.count(),
        func.sum(case((incident_alerts.c.status == "firing", 1), else_=0)),
    )
    .where(incident_alerts.c.incident_id.in_(bindparam("ids", expanding=True)))
    .group_by(incident_alerts.c.incident_id)
)


def append_timeline(conn: Connection, entries: Sequence[TimelineEntry]) -> None:
    if entries:
        conn.execute(_APPEND_TIMELINE, [entry.row() for entry in entries])


_APPEND_TIMELINE = timeline.insert()


def incidents_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, Row[Any]]:
    """Incidents by id, locked for update where the database can."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {row.id: row for row in conn.execute(_INCIDENTS_BY_IDS, {"ids": wanted})}


_INCIDENTS_BY_IDS = (
    select(incidents)
    .where(incidents.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(incidents.c.id)
    .with_for_update()
)


def mark_alerts_resolved(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Set alerts resolved: rows of {incident_id, fingerprint, ends_at, last_seen_at}."""
    if not rows:
        return
    conn.execute(
        _MARK_ALERTS_RESOLVED,
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


_MARK_ALERTS_RESOLVED = (
    update(incident_alerts)
    .where(
        incident_alerts.c.incident_id == bindparam("b_incident_id"),
        incident_alerts.c.fingerprint == bindparam("b_fingerprint"),
    )
    .values(status="resolved", ends_at=bindparam("b_ends_at"), last_seen_at=bindparam("b_seen"))
)


def verifications_due(conn: Connection, now: datetime) -> list[Row[Any]]:
    """Incidents still verifying after their verification window ended."""
    stmt = select(incidents).where(
        incidents.c.state == "verifying", incidents.c.verify_due_at < now
    )
    return list(conn.execute(stmt.order_by(incidents.c.id)))


def claim_promql_checks(
    conn: Connection, now: datetime, limit: int, next_check: Callable[[Any], datetime]
) -> list[Any]:
    """Verifying incidents whose PromQL check is due; each moves to its `next_check` time.

    Moving the time in the claiming transaction is the lease: another replica (or the next
    sweep) does not run the same check again before then.
    """
    due = (
        select(incidents.c.id, incidents.c.rule, incidents.c.verify_query)
        .where(
            incidents.c.state == "verifying",
            incidents.c.verify_check_at <= now,
            incidents.c.verify_query.is_not(None),
        )
        .order_by(incidents.c.verify_check_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = list(conn.execute(due))
    for row in rows:
        conn.execute(
            update(incidents)
            .where(incidents.c.id == row.id)
            .values(verify_check_at=next_check(row))
        )
    return rows


def sla_breach_due(conn: Connection, now: datetime) -> bool:
    """Whether `claim_sla_breaches` would find anything (a read: no write lock when idle)."""
    c = incidents.c
    ack = (c.ack_breached_at.is_(None), c.acknowledged_at.is_(None), c.ack_due_at < now)
    resolve = (c.resolve_breached_at.is_(None), c.resolve_due_at < now)
    for conditions in (ack, resolve):
        stmt = select(c.id).where(*conditions, c.resolved_at.is_(None)).limit(1)
        if conn.execute(stmt).first() is not None:
            return True
    return False


def claim_sla_breaches(conn: Connection, now: datetime, limit: int) -> list[tuple[Any, str]]:
    """Unresolved incidents past their acknowledgement or resolution due time, not yet
    recorded as breached: (incident, "acknowledge" | "resolve"). Each is marked breached in
    this transaction, so a breach is recorded once, whichever replica sees it first."""
    c = incidents.c
    found: list[tuple[Any, str]] = []
    for kind, breached, done, due in (
        ("acknowledge", c.ack_breached_at, c.acknowledged_at, c.ack_due_at),
        ("resolve", c.resolve_breached_at, c.resolved_at, c.resolve_due_at),
    ):
        stmt = (
            select(incidents)
            .where(breached.is_(None), done.is_(None), c.resolved_at.is_(None), due < now)
            .order_by(due)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(conn.execute(stmt))
        if rows:
            conn.execute(
                update(incidents)
                .where(c.id.in_([row.id for row in rows]))
                .values({breached.name: now})
            )
        found.extend((row, kind) for row in rows)
    return found


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
    opened_from: datetime | None = None,
    opened_to: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Row[Any]]:
    """Newest first; `before_id` continues a previous page. `opened_from` / `opened_to`
    bound the opening time ([from, to)); the rule "" means incidents no rule matched."""
    stmt = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
    if opened_from is not None:
        stmt = stmt.where(incidents.c.opened_at >= opened_from)
    if opened_to is not None:
        stmt = stmt.where(incidents.c.opened_at < opened_to)
    if states:
        stmt = stmt.where(incidents.c.state.in_(states))
    if priorities:
        stmt = stmt.where(incidents.c.priority.in_(priorities))
    if rules:
        named = [rule for rule in rules if rule]
        condition = incidents.c.rule.in_(named)
        stmt = stmt.where(condition | incidents.c.rule.is_(None) if "" in rules else condition)
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
