"""Queries over stored alert deliveries (`alert_events`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from remediator.intake.model import AlertEvent, Identity
from remediator.store.dialect import upsert
from remediator.store.schema import alert_events


def insert_new(
    conn: Connection, events: Sequence[AlertEvent], received_at: datetime
) -> list[AlertEvent]:
    """Store every delivery not seen before; return those, in the order given."""
    unique: dict[Identity, AlertEvent] = {}
    for event in events:
        unique.setdefault(event.identity, event)
    if not unique:
        return []
    rows = [_row(event, received_at) for event in unique.values()]
    result = conn.execute(_insert_new(conn.dialect.name), rows)
    inserted = {(r.fingerprint, r.starts_at, r.status) for r in result}
    return [event for identity, event in unique.items() if identity in inserted]


def resolved_occurrences(
    conn: Connection, occurrences: Sequence[tuple[str, datetime]]
) -> set[tuple[str, datetime]]:
    """Which (fingerprint, startsAt) already have a resolved delivery stored."""
    if not occurrences:
        return set()
    # Filter by fingerprint in SQL (an index search) and by startsAt here: SQLite cannot
    # use the index for a row-value IN and would scan every stored delivery.
    fingerprints = list({fingerprint for fingerprint, _ in occurrences})
    found = conn.execute(_RESOLVED_OCCURRENCES, {"fingerprints": fingerprints})
    return {(r.fingerprint, r.starts_at) for r in found} & set(occurrences)


# Built once: these run in every intake commit (see remediator.store.incidents).
_RESOLVED_OCCURRENCES = select(alert_events.c.fingerprint, alert_events.c.starts_at).where(
    alert_events.c.status == "resolved",
    alert_events.c.fingerprint.in_(bindparam("fingerprints", expanding=True)),
)


@cache
def _insert_new(dialect: str) -> Any:
    return (
        upsert(dialect, alert_events)
        .on_conflict_do_nothing(index_elements=["fingerprint", "starts_at", "status"])
        .returning(alert_events.c.fingerprint, alert_events.c.starts_at, alert_events.c.status)
    )


def _row(event: AlertEvent, received_at: datetime) -> dict[str, Any]:
    return {
        "fingerprint": event.fingerprint,
        "status": event.status,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "labels": event.labels,
        "annotations": event.annotations,
        "generator_url": event.generator_url,
        "receiver": event.receiver,
        "group_key": event.group_key,
        "external_url": event.external_url,
        "received_at": received_at,
    }
