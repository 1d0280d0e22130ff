"""Queries over guard state: remediations the guards let run, their targets, breakers, pauses.

Decisions must not race: two replicas each counting "4 of 5 used" would both run a sixth.
`lock` serializes deciding transactions: on PostgreSQL with a transaction-scoped advisory
lock, on SQLite by its single writer (every write transaction is BEGIN IMMEDIATE). Deciding
is rare (once per remediation job), so one lock for all guards costs nothing measurable and
makes every count exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Row, func, select, text, update
from sqlalchemy.engine import Connection

from remediator.guards.breaker import BreakerPosition, BreakerState
from remediator.guards.decide import Pause
from remediator.store.dialect import upsert
from remediator.store.schema import (
    alert_events,
    guard_breakers,
    guard_pauses,
    guard_remediations,
    guard_targets,
    incident_alerts,
    incidents,
)

# Any constant works; this one spells "guards" on a phone keypad.
_ADVISORY_LOCK: Final = 482737
SUCCESS, FAILURE = "success", "failure"


def lock(conn: Connection) -> None:
    """Serialize guard decisions with every other replica until this transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})


# -- the kill switch ---------------------------------------------------------------------


def active_pause(conn: Connection, now: datetime) -> Pause | None:
    """The pause in force now, if any (the latest one wins)."""
    stmt = (
        select(guard_pauses)
        .where(guard_pauses.c.resumed_at.is_(None))
        .order_by(guard_pauses.c.id.desc())
    )
    for row in conn.execute(stmt):
        if row.until is None or row.until > now:
            return Pause(row.paused_by, row.reason, row.paused_at, row.until)
    return None


def pause(conn: Connection, by: str, reason: str, until: datetime | None, now: datetime) -> Pause:
    """Switch automation off (replacing a pause already on)."""
    resume(conn, by, now)
    conn.execute(
        guard_pauses.insert(),
        {"paused_at": now, "paused_by": by, "reason": reason, "until": until},
    )
    return Pause(by, reason, now, until)


def resume(conn: Connection, by: str, now: datetime) -> bool:
    """Switch automation back on; False when it was not paused."""
    result = conn.execute(
        update(guard_pauses)
        .where(guard_pauses.c.resumed_at.is_(None))
        .values(resumed_at=now, resumed_by=by)
    )
    return bool(result.rowcount)


# -- circuit breakers --------------------------------------------------------------------


def breaker(conn: Connection, rule: str, *, for_update: bool = False) -> BreakerState:
    stmt = select(guard_breakers).where(guard_breakers.c.rule == rule)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return BreakerState() if row is None else _breaker(row)


def breakers(conn: Connection) -> dict[str, Row[Any]]:
    """Every stored breaker row by rule."""
    return {row.rule: row for row in conn.execute(select(guard_breakers))}


def save_breaker(conn: Connection, rule: str, state: BreakerState, by: str, now: datetime) -> None:
    values = {
        "rule": rule,
        "position": state.position.value,
        "failures": state.failures,
        "open_until": state.open_until,
        "trial_until": state.trial_until,
        "updated_at": now,
        "updated_by": by,
    }
    stmt = upsert(conn, guard_breakers).values(values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["rule"], set_=values))


def _breaker(row: Row[Any]) -> BreakerState:
    return BreakerState(
        BreakerPosition(row.position), row.failures, row.open_until, row.trial_until
    )


# -- counts the guards need --------------------------------------------------------------


def resolutions_since(conn: Connection, fingerprint: str, since: datetime) -> int:
    """How often this alert resolved since `since` (received time): its flaps."""
    stmt = select(func.count()).where(
        alert_events.c.fingerprint == fingerprint,
        alert_events.c.status == "resolved",
        alert_events.c.received_at > since,
    )
    return int(conn.execute(stmt).scalar_one())


def running_on(conn: Connection, targets: Sequence[str]) -> dict[str, int]:
    """Remediations in flight on each of these targets, by any rule."""
    stmt = (
        select(guard_targets.c.target, func.count())
        .where(guard_targets.c.target.in_(list(targets)), guard_targets.c.ended_at.is_(None))
        .group_by(guard_targets.c.target)
    )
    return {row[0]: int(row[1]) for row in conn.execute(stmt)}


def last_ended(conn: Connection, rule: str, targets: Sequence[str]) -> dict[str, datetime]:
    """When this rule's last remediation of each target ended."""
    stmt = (
        select(guard_targets.c.target, func.max(guard_targets.c.ended_at))
        .where(guard_targets.c.rule == rule, guard_targets.c.target.in_(list(targets)))
        .group_by(guard_targets.c.target)
    )
    return {row[0]: row[1] for row in conn.execute(stmt) if row[1] is not None}


def rate_used(conn: Connection, rule: str, rate_key: str, since: datetime) -> int:
    """This rule's remediations for `rate_key` started after `since`."""
    stmt = select(func.count()).where(
        guard_remediations.c.rule == rule,
        guard_remediations.c.rate_key == rate_key,
        guard_remediations.c.started_at > since,
    )
    return int(conn.execute(stmt).scalar_one())


def remediated_in_group(conn: Connection, rule: str, group: str, since: datetime) -> frozenset[str]:
    """Distinct targets of `group` this rule remediated after `since`."""
    stmt = (
        select(guard_targets.c.target)
        .where(
            guard_targets.c.rule == rule,
            guard_targets.c.group_key == group,
            guard_targets.c.started_at > since,
        )
        .distinct()
    )
    return frozenset(row.target for row in conn.execute(stmt))


def firing_alerts(conn: Connection, rule: str) -> list[Row[Any]]:
    """(incident_id, fingerprint, labels, annotations) of every firing alert in this rule's
    unresolved incidents."""
    stmt = (
        select(
            incident_alerts.c.incident_id,
            incident_alerts.c.fingerprint,
            incident_alerts.c.labels,
            incident_alerts.c.annotations,
        )
        .join(incidents, incidents.c.id == incident_alerts.c.incident_id)
        .where(
            incidents.c.rule == rule,
            incidents.c.resolved_at.is_(None),
            incident_alerts.c.status == "firing",
        )
    )
    return list(conn.execute(stmt))


def rate_usage(conn: Connection, since: datetime) -> list[Row[Any]]:
    """(rule, rate_key, count, oldest start) of remediations started after `since`."""
    stmt = (
        select(
            guard_remediations.c.rule,
            guard_remediations.c.rate_key,
            func.count().label("used"),
            func.min(guard_remediations.c.started_at).label("oldest"),
        )
        .where(guard_remediations.c.started_at > since)
        .group_by(guard_remediations.c.rule, guard_remediations.c.rate_key)
    )
    return list(conn.execute(stmt))


def running(conn: Connection) -> list[Row[Any]]:
    """Targets with a remediation in flight: (target, rule, started_at)."""
    stmt = select(guard_targets.c.target, guard_targets.c.rule, guard_targets.c.started_at).where(
        guard_targets.c.ended_at.is_(None)
    )
    return list(conn.execute(stmt.order_by(guard_targets.c.started_at)))


# -- recording remediations ---------------------------------------------------------------


def begin(
    conn: Connection,
    *,
    job_id: int,
    incident_id: int,
    rule: str,
    rate_key: str,
    group: str,
    targets: Iterable[str],
    now: datetime,
) -> None:
    """Record a remediation the guards let run, and the targets it holds while it runs."""
    result = conn.execute(
        guard_remediations.insert(),
        {
            "job_id": job_id,
            "incident_id": incident_id,
            "rule": rule,
            "rate_key": rate_key,
            "started_at": now,
        },
    )
    remediation_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    rows = [
        {
            "remediation_id": remediation_id,
            "rule": rule,
            "target": target,
            "group_key": group,
            "started_at": now,
        }
        for target in targets
    ]
    if rows:
        conn.execute(guard_targets.insert(), rows)


def end(conn: Connection, job_ids: Sequence[int], now: datetime) -> None:
    """The jobs' actions are over: their targets are free (and their cooldowns start)."""
    if not job_ids:
        return
    ids = select(guard_remediations.c.id).where(guard_remediations.c.job_id.in_(list(job_ids)))
    conn.execute(
        update(guard_targets)
        .where(guard_targets.c.remediation_id.in_(ids), guard_targets.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    conn.execute(
        update(guard_remediations)
        .where(
            guard_remediations.c.job_id.in_(list(job_ids)), guard_remediations.c.ended_at.is_(None)
        )
        .values(ended_at=now)
    )


def settle(conn: Connection, incident_id: int, outcome: str) -> list[str]:
    """Give the incident's undecided remediations their outcome; returns their rules."""
    undecided = list(
        conn.execute(
            select(guard_remediations.c.id, guard_remediations.c.rule).where(
                guard_remediations.c.incident_id == incident_id,
                guard_remediations.c.outcome.is_(None),
            )
        )
    )
    if undecided:
        conn.execute(
            update(guard_remediations)
            .where(guard_remediations.c.id.in_([row.id for row in undecided]))
            .values(outcome=outcome)
        )
    return sorted({row.rule for row in undecided})
