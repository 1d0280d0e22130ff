"""A fixed incident history whose quality indicators are computed by hand below.

The unit, API and browser tests of the quality report all load this history and compare
with EXPECTED; each expected number says how it was worked out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from remediator.store.schema import incidents, remediation_jobs

FROM, TO = "2026-11-01", "2026-11-07"  # `to` as a date includes that day: [Nov 1, Nov 8)
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


# (id, rule, priority, opened, {event: seconds after opening}, resolution, recurred, breaches)
INCIDENTS: list[dict[str, Any]] = [
    # 1: fixed by automation in 2 minutes; nobody paged.
    {"id": 1, "rule": "disk-full", "priority": "P2", "opened": T0, "resolved": 120,
     "resolution": "automation", "jobs": ["succeeded"]},
    # 2: the fix failed; escalated and paged at 5 min, acknowledged at 10, fixed by hand at 30.
    {"id": 2, "rule": "disk-full", "priority": "P2", "opened": T0 + _s(3600), "escalated": 300,
     "paged": 300, "acknowledged": 600, "resolved": 1800, "resolution": "human",
     "jobs": ["failed"]},
    # 3: incident 1 again (a recurrence); automation fixed it in 1 minute.
    {"id": 3, "rule": "disk-full", "priority": "P1", "opened": T0 + _s(7200), "resolved": 60,
     "resolution": "automation", "previous": 1, "jobs": ["succeeded"]},
    # 4: a guard blocked the fix; escalated and paged, never acknowledged, both SLAs breached,
    #    the alert went away on its own after 2 hours.
    {"id": 4, "rule": "pod-crash", "priority": "P1", "opened": T0 + _s(10800), "escalated": 10,
     "paged": 10, "resolved": 7200, "resolution": "alert", "ack_breached": 1200,
     "resolve_breached": 3600, "jobs": ["blocked"]},
    # 5: no rule matched: paged at once, resolved by hand (no acknowledgement) at 15 minutes.
    {"id": 5, "rule": None, "priority": "P3", "opened": T0 + _s(14400), "escalated": 0,
     "paged": 0, "resolved": 900, "resolution": "human"},
    # 6: paged to approve a fix (not escalated), acknowledged at 2 minutes, still open; its one
    #    job was a dry run, which says nothing about the fix.
    {"id": 6, "rule": "pod-crash", "priority": "P1", "opened": T0 + _s(18000), "paged": 60,
     "acknowledged": 120, "dry_run_jobs": ["succeeded"]},
    # 7 and 8: outside the period (before it; exactly at its exclusive end).
    {"id": 7, "rule": "disk-full", "priority": "P2", "opened": datetime(2026, 10, 20, tzinfo=UTC),
     "resolved": 5, "resolution": "automation", "jobs": ["succeeded"]},
    {"id": 8, "rule": "disk-full", "priority": "P2", "opened": datetime(2026, 11, 8, tzinfo=UTC),
     "escalated": 1, "paged": 1},
]  # fmt: skip

# Resolve times (1,2,3,4,5): 120, 1800, 60, 7200, 900 → sorted 60, 120, 900, 1800, 7200.
#   median = 900; p90 at rank 0.9·4 = 3.6 → 1800 + 0.6·(7200 - 1800) = 5040.
# First human response of the paged (2, 4, 5, 6): 600, —, 900 (resolved by hand), 120
#   → 120, 600, 900: median 600; p90 at rank 1.8 → 600 + 0.8·300 = 840.
EXPECTED: dict[str, Any] = {
    "incidents": 6,
    "resolved": 5,
    "paged": 4,
    "acknowledged": 3,
    "mtta": {"count": 3, "median_seconds": 600.0, "p90_seconds": 840.0},
    "mttr": {"count": 5, "median_seconds": 900.0, "p90_seconds": 5040.0},
    "auto_remediated": 2,  # 1 and 3
    "auto_remediation_rate": 0.4,  # 2 of 5 resolved
    "escalated": 3,  # 2, 4, 5
    "escalation_rate": 0.5,  # 3 of 6
    "recurred": 1,  # 3
    "recurrence_rate": 0.2,  # 1 of 5 resolved
    "sla_breached": 1,  # 4
    "sla_breach_rate": 1 / 6,
}
EXPECTED_BY_PRIORITY: dict[str, dict[str, Any]] = {
    # P1: 3, 4, 6; only 4 breached; resolved 3 (60) and 4 (7200): median 3630,
    #   p90 = 60 + 0.9·7140 = 6486.
    "P1": {"incidents": 3, "sla_breached": 1, "sla_breach_rate": 1 / 3, "ack_sla_breached": 1,
           "resolve_sla_breached": 1,
           "mttr": {"count": 2, "median_seconds": 3630.0, "p90_seconds": 6486.0}},
    # P2: 1 (120) and 2 (1800): median 960, p90 = 120 + 0.9·1680 = 1632.
    "P2": {"incidents": 2, "sla_breached": 0, "sla_breach_rate": 0.0, "ack_sla_breached": 0,
           "resolve_sla_breached": 0,
           "mttr": {"count": 2, "median_seconds": 960.0, "p90_seconds": 1632.0}},
    "P3": {"incidents": 1, "sla_breached": 0, "sla_breach_rate": 0.0, "ack_sla_breached": 0,
           "resolve_sla_breached": 0,
           "mttr": {"count": 1, "median_seconds": 900.0, "p90_seconds": 900.0}},
    "P4": {"incidents": 0, "sla_breached": 0, "sla_breach_rate": None, "ack_sla_breached": 0,
           "resolve_sla_breached": 0,
           "mttr": {"count": 0, "median_seconds": None, "p90_seconds": None}},
}  # fmt: skip
EXPECTED_BY_RULE: list[dict[str, Any]] = [
    # disk-full: 1, 2, 3; two fixed by automation; 2 escalated; jobs 2 succeeded + 1 failed
    #   (incident 7's job is outside the period); resolve times 60, 120, 1800: median 120,
    #   p90 = 120 + 0.8·1680 = 1464.
    {"rule": "disk-full", "incidents": 3, "resolved": 3, "auto_remediated": 2,
     "auto_remediation_rate": 2 / 3, "escalated": 1, "escalation_rate": 1 / 3,
     "remediations_run": 3, "remediations_succeeded": 2, "remediation_success_rate": 2 / 3,
     "remediations_held_back": 0,
     "mttr": {"count": 3, "median_seconds": 120.0, "p90_seconds": 1464.0}},
    # pod-crash: 4 and 6; 4 escalated; its job was blocked; the dry run is not counted.
    {"rule": "pod-crash", "incidents": 2, "resolved": 1, "auto_remediated": 0,
     "auto_remediation_rate": 0.0, "escalated": 1, "escalation_rate": 0.5,
     "remediations_run": 0, "remediations_succeeded": 0, "remediation_success_rate": None,
     "remediations_held_back": 1,
     "mttr": {"count": 1, "median_seconds": 7200.0, "p90_seconds": 7200.0}},
    {"rule": "(no rule)", "incidents": 1, "resolved": 1, "auto_remediated": 0,
     "auto_remediation_rate": 0.0, "escalated": 1, "escalation_rate": 1.0,
     "remediations_run": 0, "remediations_succeeded": 0, "remediation_success_rate": None,
     "remediations_held_back": 0,
     "mttr": {"count": 1, "median_seconds": 900.0, "p90_seconds": 900.0}},
]  # fmt: skip


def load_history(conn: Connection) -> None:
    """Insert INCIDENTS (with their remediation jobs) into an empty, migrated database."""
    for spec in INCIDENTS:
        conn.execute(incidents.insert().values(**_incident_row(spec)))
        for dry_run, states in (
            (False, spec.get("jobs", [])),
            (True, spec.get("dry_run_jobs", [])),
        ):
            for state in states:
                conn.execute(remediation_jobs.insert().values(**_job_row(spec, state, dry_run)))


def _incident_row(spec: dict[str, Any]) -> dict[str, Any]:
    opened: datetime = spec["opened"]

    def at(event: str) -> datetime | None:
        return opened + _s(spec[event]) if event in spec else None

    resolved = at("resolved")
    return {
        "id": spec["id"],
        "key": f"history-{spec['id']}",
        "rule": spec["rule"],
        "state": "resolved" if resolved else "acknowledged" if "acknowledged" in spec else "open",
        "priority": spec["priority"],
        "base_priority": spec["priority"],
        "title": f"Incident {spec['id']} of the fixed history",
        "labels": {"alertname": f"History{spec['id']}", "rule": str(spec["rule"])},
        "annotations": {},
        "alert_count": 1,
        "firing_count": 0 if resolved else 1,
        "opened_at": opened,
        "updated_at": resolved or opened,
        "acknowledged_at": at("acknowledged"),
        "acknowledged_by": "alice" if "acknowledged" in spec else None,
        "resolved_at": resolved,
        "resolved_reason": spec.get("resolution"),
        "resolution": spec.get("resolution"),
        "resolve_seconds": spec.get("resolved"),
        "response_seconds": spec.get(
            "acknowledged", spec.get("resolved") if spec.get("resolution") == "human" else None
        ),
        "paged_at": at("paged"),
        "escalated_at": at("escalated"),
        "ack_due_at": opened + _s(900),
        "resolve_due_at": opened + _s(3600),
        "ack_breached_at": at("ack_breached"),
        "resolve_breached_at": at("resolve_breached"),
        "previous_incident_id": spec.get("previous"),
        "recurrence_count": 1 if "previous" in spec else 0,
    }  # fmt: skip


def _job_row(spec: dict[str, Any], state: str, dry_run: bool) -> dict[str, Any]:
    opened: datetime = spec["opened"]
    return {
        "incident_id": spec["id"],
        "rule": spec["rule"],
        "fingerprint": f"{spec['id']:016x}",
        "starts_at": opened,
        "state": state,
        "dry_run": dry_run,
        "labels": {},
        "annotations": {},
        "created_at": opened,
        "finished_at": opened + _s(30),
    }
