"""Queries for escalation chains and their notifications (see schema.py for the rows)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Row, or_, select, update
from sqlalchemy.engine import Connection

from remediator.store.dialect import upsert
from remediator.store.schema import escalations, notifications

ACTIVE: Final = "active"
STOPPED: Final = "stopped"
DONE: Final = "done"

PENDING: Final = "pending"
SENDING: Final = "sending"
SENT: Final = "sent"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"


def active_for(conn: Connection, incident_id: int) -> Row[Any] | None:
    stmt = select(escalations).where(
        escalations.c.incident_id == incident_id, escalations.c.state == ACTIVE
    )
    return conn.execute(stmt.order_by(escalations.c.id.desc())).first()


def latest_for(conn: Connection, incident_id: int) -> Row[Any] | None:
    stmt = select(escalations).where(escalations.c.incident_id == incident_id)
    return conn.execute(stmt.order_by(escalations.c.id.desc())).first()


def is_active(conn: Connection, escalation_id: int) -> bool:
    stmt = select(escalations.c.state).where(escalations.c.id == escalation_id)
    return conn.execute(stmt).scalar() == ACTIVE


def start(conn: Connection, incident_id: int, policy: str, reason: str, now: datetime) -> int:
    """A new active chain at its first step, due now."""
    result = conn.execute(
        escalations.insert().values(
            incident_id=incident_id,
            policy=policy,
            state=ACTIVE,
            step=0,
            cycle=0,
            next_at=now,
            reason=reason,
            started_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def work_due(conn: Connection, now: datetime) -> bool:
    """Whether a chain step or a notification is due: a read, so an idle service asks it
    without taking the write lock that intake needs."""
    chain = select(escalations.c.id).where(
        escalations.c.state == ACTIVE, escalations.c.next_at <= now
    )
    page = select(notifications.c.id).where(
        or_(
            (notifications.c.state == PENDING) & (notifications.c.next_at <= now),
            (notifications.c.state == SENDING) & (notifications.c.lease_expires_at < now),
        )
    )
    return bool(conn.execute(chain.limit(1)).first() or conn.execute(page.limit(1)).first())


def claim_due(conn: Connection, now: datetime, limit: int, hold_until: datetime) -> list[Any]:
    """Active chains whose next step is due; each is held until `hold_until` (its lease)."""
    due = (
        select(escalations)
        .where(escalations.c.state == ACTIVE, escalations.c.next_at <= now)
        .order_by(escalations.c.next_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = list(conn.execute(due))
    if rows:
        conn.execute(
            update(escalations)
            .where(escalations.c.id.in_([row.id for row in rows]))
            .values(next_at=hold_until)
        )
    return rows


def update_escalation(conn: Connection, escalation_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(escalations).where(escalations.c.id == escalation_id).values(**values))


def add_notifications(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert notifications; one that exists for the same step is left alone. Returns the
    number inserted (a retried step, on any replica, sends nothing twice)."""
    inserted = 0
    for row in rows:
        stmt = upsert(conn, notifications).values(**row).on_conflict_do_nothing()
        inserted += conn.execute(stmt).rowcount or 0
    return inserted


def claim_notifications(
    conn: Connection, owner: str, now: datetime, limit: int, lease_until: datetime
) -> list[Any]:
    """Pending notifications that are due, and sending ones whose sender's lease lapsed."""
    trigger = notifications.alias("trigger")
    # An acknowledge/resolve waits while its channel's trigger is still on its way, so that
    # a paging system never hears "resolved" before the page that it resolves.
    trigger_in_flight = (
        select(trigger.c.id)
        .where(
            trigger.c.escalation_id == notifications.c.escalation_id,
            trigger.c.channel == notifications.c.channel,
            trigger.c.event == "trigger",
            trigger.c.state.in_([PENDING, SENDING]),
        )
        .exists()
    )
    due = (
        select(notifications.c.id)
        .where(
            or_(
                (notifications.c.state == PENDING) & (notifications.c.next_at <= now),
                (notifications.c.state == SENDING) & (notifications.c.lease_expires_at < now),
            ),
            (notifications.c.event == "trigger") | ~trigger_in_flight,
        )
        .order_by(notifications.c.next_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = [row.id for row in conn.execute(due)]
    if not ids:
        return []
    conn.execute(
        update(notifications)
        .where(notifications.c.id.in_(ids))
        .values(state=SENDING, lease_owner=owner, lease_expires_at=lease_until)
    )
    claimed = select(notifications).where(notifications.c.id.in_(ids))
    return list(conn.execute(claimed.order_by(notifications.c.id)))


def renew_notifications(
    conn: Connection, ids: Sequence[int], owner: str, lease_until: datetime
) -> None:
    conn.execute(
        update(notifications)
        .where(
            notifications.c.id.in_(ids),
            notifications.c.lease_owner == owner,
            notifications.c.state == SENDING,
        )
        .values(lease_expires_at=lease_until)
    )


def update_notification(conn: Connection, notification_id: int, values: dict[str, Any]) -> None:
    conn.execute(
        update(notifications).where(notifications.c.id == notification_id).values(**values)
    )


def cancel_pending_triggers(conn: Connection, escalation_id: int, reason: str) -> int:
    """Pages not yet sent when the chain stops are not sent at all; returns how many."""
    result = conn.execute(
        update(notifications)
        .where(
            notifications.c.escalation_id == escalation_id,
            notifications.c.event == "trigger",
            notifications.c.state == PENDING,
        )
        .values(state=CANCELLED, summary=reason)
    )
    return result.rowcount or 0


def triggered_channels(conn: Connection, escalation_id: int) -> list[str]:
    """Channels a trigger of this chain went to (or is going to): they hear how it ends."""
    stmt = (
        select(notifications.c.channel)
        .where(
            notifications.c.escalation_id == escalation_id,
            notifications.c.event == "trigger",
            notifications.c.state.in_([SENDING, SENT]),
        )
        .distinct()
        .order_by(notifications.c.channel)
    )
    return [row.channel for row in conn.execute(stmt)]


def escalations_of(conn: Connection, incident_id: int) -> list[Any]:
    stmt = select(escalations).where(escalations.c.incident_id == incident_id)
    return list(conn.execute(stmt.order_by(escalations.c.id)))


def notifications_of(conn: Connection, incident_id: int) -> list[Any]:
    stmt = select(notifications).where(notifications.c.incident_id == incident_id)
    return list(conn.execute(stmt.order_by(notifications.c.id)))
