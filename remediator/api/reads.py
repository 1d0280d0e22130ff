"""Read models shared by the REST API and the dashboard: a page of incidents, one incident
with everything that happened to it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from remediator.api.models import (
    ActionRun,
    Alert,
    Escalation,
    Incident,
    IncidentDetail,
    KnownResolutionOut,
    NotificationOut,
    RemediationJob,
    TimelineEntry,
)
from remediator.rules import Matcher
from remediator.store import escalations as escalation_store
from remediator.store import incidents as store
from remediator.store import jobs as job_store
from remediator.store import resolutions

# A label-matcher filter is applied after the SQL filters; cap how far one page may scan.
MAX_SCAN = 5000


def page_of_incidents(
    conn: Connection,
    filters: dict[str, Any],
    limit: int,
    before: int | None,
    matchers: list[Matcher],
) -> tuple[list[Any], int | None]:
    """One page, newest first, and the id to continue before (None at the end)."""
    # Without label matchers one SQL page is the answer; with them, scan in chunks.
    chunk = limit if not matchers else max(limit, 200)
    found: list[Any] = []
    scanned = 0
    while True:
        rows = store.list_incidents(conn, before_id=before, limit=chunk, **filters)
        for row in rows:
            scanned += 1
            before = row.id
            if all(m.matches(row.labels) for m in matchers):
                found.append(row)
                if len(found) == limit:
                    return found, row.id
        if len(rows) < chunk:
            return found, None  # no older incidents
        if scanned >= MAX_SCAN:
            return found, before  # a short page; the cursor continues the scan


def incident_detail(conn: Connection, incident_id: int) -> IncidentDetail | None:
    row = store.get_incident(conn, incident_id)
    if row is None:
        return None
    return IncidentDetail(
        **Incident.model_validate(row).model_dump(),
        alerts=[Alert.model_validate(a) for a in store.alerts_of(conn, incident_id)],
        timeline=[TimelineEntry.model_validate(e) for e in store.timeline_of(conn, incident_id)],
        remediation=_remediation(conn, incident_id),
        escalations=_escalations(conn, incident_id),
        known_resolutions=[
            KnownResolutionOut(
                incident_id=found.incident_id,
                note=found.note,
                resolved_by=found.resolved_by,
                at=found.at,
                same_key=found.incident_key == row.key,
            )
            for found in resolutions.recent_for(conn, row)
        ],
    )


def _escalations(conn: Connection, incident_id: int) -> list[Escalation]:
    sent: dict[int, list[NotificationOut]] = {}
    for row in escalation_store.notifications_of(conn, incident_id):
        sent.setdefault(row.escalation_id, []).append(NotificationOut.model_validate(row))
    return [
        Escalation.model_validate(chain).model_copy(
            update={"notifications": sent.get(chain.id, [])}
        )
        for chain in escalation_store.escalations_of(conn, incident_id)
    ]


def _remediation(conn: Connection, incident_id: int) -> list[RemediationJob]:
    runs: dict[int, list[ActionRun]] = {}
    for run in job_store.runs_of(conn, incident_id):
        runs.setdefault(run.job_id, []).append(ActionRun.model_validate(run))
    return [
        RemediationJob.model_validate(job).model_copy(update={"runs": runs.get(job.id, [])})
        for job in job_store.jobs_of(conn, incident_id)
    ]
