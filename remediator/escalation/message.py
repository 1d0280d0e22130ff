"""What a page says: the incident, why it reached a human, and what automation tried."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from remediator.config import Config
from remediator.escalation.links import acknowledge_url, approval_url
from remediator.plugins import AttemptSummary, KnownResolution, Notification
from remediator.store import escalations as store
from remediator.store import incidents as incident_store
from remediator.store import jobs as job_store
from remediator.store import resolutions


def dedup_key(incident_id: int) -> str:
    """The key receivers deduplicate on: one PagerDuty incident / Opsgenie alert per ours."""
    return f"remediator-{incident_id}"


def incident_url(config: Config, incident_id: int) -> str:
    return f"{config.external_url.rstrip('/')}/api/v1/incidents/{incident_id}"


def build_notification(conn: Connection, row: Any, config: Config, now: datetime) -> Notification:
    """The notification for claimed notification `row`, read in the claiming transaction."""
    incident = incident_store.get_incident(conn, row.incident_id)
    assert incident is not None  # notifications are deleted with their incident
    return Notification(
        event=row.event,
        incident_id=incident.id,
        dedup_key=dedup_key(incident.id),
        title=incident.title,
        priority=incident.priority,
        state=incident.state,
        reason=_reason(conn, row, incident),
        labels=dict(incident.labels),
        annotations=dict(incident.annotations),
        runbook=incident.runbook,
        rule=incident.rule,
        opened_at=incident.opened_at,
        incident_url=incident_url(config, incident.id),
        acknowledge_url=acknowledge_url(config, incident.id, now)
        if row.event == "trigger"
        else None,
        attempts=_attempts(conn, incident.id),
        recipients=tuple(row.recipients or ()),
        notification_id=row.id,
        known_resolutions=_known(conn, incident) if row.event == "trigger" else (),
        approval_url=_approval(conn, config, incident.id, now) if row.event == "trigger" else None,
    )


def _approval(conn: Connection, config: Config, incident_id: int, now: datetime) -> str | None:
    """The approve/reject link of the incident's job that waits for approval, if any."""
    waiting = [
        job
        for job in job_store.jobs_of(conn, incident_id)
        if job.state == job_store.AWAITING_APPROVAL
    ]
    return approval_url(config, waiting[0].id, now) if waiting else None


def _reason(conn: Connection, row: Any, incident: Any) -> str:
    """Why this event: the escalation reason, who acknowledged, or how it resolved."""
    chain = next(
        (c for c in store.escalations_of(conn, incident.id) if c.id == row.escalation_id), None
    )
    if row.event == "resolve" and incident.resolved_reason:
        return str(incident.resolved_reason)
    if chain is None:
        return ""
    if row.event == "trigger":
        return str(chain.reason)
    return str(chain.stop_reason or chain.reason)


def _known(conn: Connection, incident: Any) -> tuple[KnownResolution, ...]:
    return tuple(
        KnownResolution(
            note=found.note,
            resolved_by=found.resolved_by,
            at=found.at,
            incident_id=found.incident_id,
            same_key=found.incident_key == incident.key,
        )
        for found in resolutions.recent_for(conn, incident)
    )


def _attempts(conn: Connection, incident_id: int) -> tuple[AttemptSummary, ...]:
    return tuple(
        AttemptSummary(
            action=f"{run.type} action {run.action_index + 1}",
            attempt=run.attempt,
            outcome=run.outcome,
            summary=run.summary,
            at=run.finished_at,
        )
        for run in job_store.runs_of(conn, incident_id)
    )
