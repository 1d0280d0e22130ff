"""What a human does to an incident: acknowledge, resolve, add a note.

Each is one transaction that checks the state machine and appends to the timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.engine import Connection

from remediator.errors import IncidentNotFoundError
from remediator.escalation import chain as escalation_chain
from remediator.incidents.ingest import utcnow
from remediator.incidents.states import IncidentState, check_transition
from remediator.incidents.timeline import Actor, TimelineEntry
from remediator.store import incidents as store
from remediator.store import resolutions
from remediator.store.database import Database


class IncidentOperations:
    """Human actions on incidents, each recorded with the user who took it."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime] = utcnow,
        on_escalation_change: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        # Told after a committed acknowledge/resolve, so the paged channels hear it now.
        self._on_escalation_change = on_escalation_change

    async def acknowledge(self, incident_id: int, user: str, comment: str | None) -> None:
        now = self._clock()
        message = f"acknowledged by {user}" + (f": {comment}" if comment else "")
        changes = {"acknowledged_at": now, "acknowledged_by": user}
        await self._transition(
            incident_id, user, IncidentState.acknowledged, message, changes, now, "acknowledge"
        )

    async def resolve(self, incident_id: int, user: str, reason: str | None) -> None:
        """Resolve by hand; `reason` ("what fixed it") is kept as a known resolution that
        later escalations of the same rule or key show."""
        now = self._clock()
        message = f"resolved by {user}" + (f": {reason}" if reason else "")
        changes = {"resolved_at": now, "resolved_reason": message, "resolution": "human"}
        await self._transition(
            incident_id, user, IncidentState.resolved, message, changes, now, "resolve", reason
        )

    async def _transition(
        self,
        incident_id: int,
        user: str,
        target: IncidentState,
        message: str,
        changes: dict[str, Any],
        now: datetime,
        event: str,
        known_resolution: str | None = None,
    ) -> None:
        def transaction(conn: Connection) -> None:
            row = _locked(conn, incident_id)
            if known_resolution:
                resolutions.record(conn, row, known_resolution, user, now)
            check_transition(incident_id, row.state, target)
            values = {
                "state": target.value,
                "updated_at": now,
                **changes,
                **_timings(row, target, now),
            }
            store.update_incident(conn, incident_id, values)
            _append(conn, incident_id, now, user, "state_changed", message, row.state, target.value)
            # A human has it (or it is over): no more pages; those paged hear so.
            escalation_chain.stop(conn, incident_id, event, message, now)

        await self._db.write(transaction)
        if self._on_escalation_change is not None:
            self._on_escalation_change()

    async def add_note(self, incident_id: int, user: str, text: str) -> None:
        now = self._clock()

        def transaction(conn: Connection) -> None:
            _locked(conn, incident_id)
            _append(conn, incident_id, now, user, "note", text, None, None)
            store.update_incident(conn, incident_id, {"updated_at": now})

        await self._db.write(transaction)


def _timings(row: Row[Any], target: IncidentState, now: datetime) -> dict[str, float]:
    """The report's durations for a human acting `now`: the first response (acknowledging, or
    resolving by hand without acknowledging), and the resolution when it is one."""
    elapsed = store.seconds_since(row.opened_at, now)
    timings = {"response_seconds": elapsed} if row.response_seconds is None else {}
    if target == IncidentState.resolved:
        timings["resolve_seconds"] = elapsed
    return timings


def _locked(conn: Connection, incident_id: int) -> Row[Any]:
    row = store.get_incident(conn, incident_id, lock=True)
    if row is None:
        raise IncidentNotFoundError(incident_id)
    return row


def _append(
    conn: Connection,
    incident_id: int,
    at: datetime,
    user: str,
    kind: str,
    message: str,
    from_state: str | None,
    to_state: str | None,
) -> None:
    entry = TimelineEntry(incident_id, at, Actor.user(user), kind, message, from_state, to_state)
    store.append_timeline(conn, [entry])
