"""Queries over remediation jobs and their action runs.

A job is queued in the intake transaction, claimed by a worker with a lease (renewed while
it runs), and ended by the worker. A lease that lapses means the worker is gone: the job is
marked interrupted by whoever notices first, so no job stays "running" forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.engine import Connection

from remediator.intake.model import AlertEvent
from remediator.store.schema import action_runs, remediation_jobs

QUEUED, RUNNING, AWAITING_APPROVAL = "queued", "running", "awaiting_approval"
SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = "succeeded", "failed", "cancelled", "interrupted"
# Ended by a guard before any action ran: blocked, or an approval refused or not given.
BLOCKED, REJECTED = "blocked", "rejected"
ACTIVE_STATES = (QUEUED, RUNNING, AWAITING_APPROVAL)
# Jobs whose actions have not started: an alert resolving in time cancels them.
WAITING_STATES = (QUEUED, AWAITING_APPROVAL)


def job_row(
    incident_id: int, rule: str, event: AlertEvent, dry_run: bool, now: datetime
) -> dict[str, Any]:
    """The row that queues a job for this alert of this incident."""
    return {
        "incident_id": incident_id,
        "rule": rule,
        "fingerprint": event.fingerprint,
        "starts_at": event.starts_at,
        "state": QUEUED,
        "dry_run": dry_run,
        "labels": event.labels,
        "annotations": event.annotations,
        "created_at": now,
    }


def insert_jobs(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(_INSERT_JOBS, list(rows))


_INSERT_JOBS = remediation_jobs.insert()


def queued_for(conn: Connection, fingerprints: Iterable[str]) -> list[Row[Any]]:
    """Jobs of these alerts still waiting to run (id, incident_id, fingerprint, state)."""
    wanted = list(set(fingerprints))
    if not wanted:
        return []
    return list(conn.execute(_QUEUED_FOR, {"fingerprints": wanted}))


_QUEUED_FOR = select(
    remediation_jobs.c.id,
    remediation_jobs.c.incident_id,
    remediation_jobs.c.fingerprint,
    remediation_jobs.c.state,
).where(
    remediation_jobs.c.state.in_(WAITING_STATES),
    remediation_jobs.c.fingerprint.in_(bindparam("fingerprints", expanding=True)),
)


def cancel(conn: Connection, ids: Sequence[int], reason: str, now: datetime) -> None:
    if ids:
        conn.execute(
            update(remediation_jobs)
            .where(remediation_jobs.c.id.in_(ids), remediation_jobs.c.state.in_(WAITING_STATES))
            .values(state=CANCELLED, outcome=reason, finished_at=now)
        )


# How far past `limit` a claim looks for jobs of rules that still have room.
_CLAIM_LOOKAHEAD = 10


def claim(
    conn: Connection,
    owner: str,
    limit: int,
    now: datetime,
    lease_until: datetime,
    room: Callable[[str], int] | None = None,
) -> list[Row[Any]]:
    """Take up to `limit` queued jobs, oldest first, for `owner`; return them.

    `room(rule)` says how many more jobs of a rule the owner may run now (None: no limit):
    jobs of a rule without room stay queued, and younger jobs of other rules go first.
    """
    c = remediation_jobs.c
    queued = select(c.id, c.rule).where(c.state == QUEUED).order_by(c.id)
    picked: list[int] = []
    left: dict[str, int] = {}
    for job in conn.execute(queued.limit(limit * _CLAIM_LOOKAHEAD if room else limit)):
        if room is not None:
            left.setdefault(job.rule, room(job.rule))
            if left[job.rule] <= 0:
                continue
            left[job.rule] -= 1
        picked.append(job.id)
        if len(picked) == limit:
            break
    if not picked:
        return []
    lock = select(c.id).where(c.id.in_(picked), c.state == QUEUED).order_by(c.id)
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update(skip_locked=True)  # replicas take different jobs
    ids = [row.id for row in conn.execute(lock)]
    if not ids:
        return []
    conn.execute(
        update(remediation_jobs)
        .where(remediation_jobs.c.id.in_(ids))
        .values(state=RUNNING, lease_owner=owner, lease_expires_at=lease_until, started_at=now)
    )
    claimed = select(remediation_jobs).where(remediation_jobs.c.id.in_(ids))
    return list(conn.execute(claimed.order_by(remediation_jobs.c.id)))


def await_approval(conn: Connection, job_id: int, due: datetime) -> None:
    """A claimed job waits for a human: no lease, no worker, until `due`."""
    conn.execute(
        update(remediation_jobs)
        .where(remediation_jobs.c.id == job_id, remediation_jobs.c.state == RUNNING)
        .values(
            state=AWAITING_APPROVAL,
            approval_due_at=due,
            lease_owner=None,
            lease_expires_at=None,
            started_at=None,
        )
    )


def get_job(conn: Connection, job_id: int, *, lock: bool = False) -> Row[Any] | None:
    stmt = select(remediation_jobs).where(remediation_jobs.c.id == job_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def approve(conn: Connection, job_id: int, by: str, now: datetime) -> bool:
    """An awaiting job goes back to the queue, approved; False if it was not awaiting."""
    result = conn.execute(
        update(remediation_jobs)
        .where(remediation_jobs.c.id == job_id, remediation_jobs.c.state == AWAITING_APPROVAL)
        .values(state=QUEUED, approved_by=by, approved_at=now, approval_due_at=None)
    )
    return bool(result.rowcount)


def end_waiting(conn: Connection, job_id: int, state: str, outcome: str, now: datetime) -> bool:
    """End an awaiting job (rejected, or its approval timed out); False if it was not."""
    result = conn.execute(
        update(remediation_jobs)
        .where(remediation_jobs.c.id == job_id, remediation_jobs.c.state == AWAITING_APPROVAL)
        .values(state=state, outcome=outcome, finished_at=now, approval_due_at=None)
    )
    return bool(result.rowcount)


def approvals_due(conn: Connection, now: datetime) -> list[Row[Any]]:
    """Jobs whose approval was not given in time."""
    stmt = select(remediation_jobs).where(
        remediation_jobs.c.state == AWAITING_APPROVAL, remediation_jobs.c.approval_due_at < now
    )
    return list(conn.execute(stmt.order_by(remediation_jobs.c.id)))


def awaiting(conn: Connection) -> list[Row[Any]]:
    """Every job waiting for approval, oldest first."""
    stmt = select(remediation_jobs).where(remediation_jobs.c.state == AWAITING_APPROVAL)
    return list(conn.execute(stmt.order_by(remediation_jobs.c.id)))


def renew(conn: Connection, ids: Sequence[int], owner: str, lease_until: datetime) -> None:
    if ids:
        conn.execute(
            update(remediation_jobs)
            .where(
                remediation_jobs.c.id.in_(ids),
                remediation_jobs.c.lease_owner == owner,
                remediation_jobs.c.state == RUNNING,
            )
            .values(lease_expires_at=lease_until)
        )


def finish(conn: Connection, job_id: int, state: str, outcome: str, now: datetime) -> bool:
    """End a running job; False if it was not running any more (interrupted meanwhile)."""
    result = conn.execute(
        update(remediation_jobs)
        .where(remediation_jobs.c.id == job_id, remediation_jobs.c.state == RUNNING)
        .values(state=state, outcome=outcome, finished_at=now, lease_expires_at=None)
    )
    return bool(result.rowcount)


def lapsed(conn: Connection, now: datetime) -> list[Row[Any]]:
    """Running jobs whose lease has expired: their worker stopped without ending them."""
    stmt = select(remediation_jobs.c.id, remediation_jobs.c.incident_id).where(
        remediation_jobs.c.state == RUNNING, remediation_jobs.c.lease_expires_at < now
    )
    return list(conn.execute(stmt))


def mark_interrupted(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    if ids:
        conn.execute(
            update(remediation_jobs)
            .where(remediation_jobs.c.id.in_(ids), remediation_jobs.c.state == RUNNING)
            .values(
                state=INTERRUPTED,
                outcome="interrupted: the worker stopped before the job ended (lease expired)",
                finished_at=now,
            )
        )


def oldest_queued(conn: Connection) -> datetime | None:
    """When the oldest job still queued was created; None when none is."""
    stmt = select(func.min(remediation_jobs.c.created_at)).where(remediation_jobs.c.state == QUEUED)
    value: datetime | None = conn.execute(stmt).scalar_one()
    return value


def states_of_incident(conn: Connection, incident_id: int) -> list[str]:
    stmt = select(remediation_jobs.c.state).where(remediation_jobs.c.incident_id == incident_id)
    return [row.state for row in conn.execute(stmt)]


def record_run(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(action_runs.insert(), row)


def jobs_of(conn: Connection, incident_id: int) -> list[Row[Any]]:
    stmt = select(remediation_jobs).where(remediation_jobs.c.incident_id == incident_id)
    return list(conn.execute(stmt.order_by(remediation_jobs.c.id)))


def runs_of(conn: Connection, incident_id: int) -> list[Row[Any]]:
    stmt = select(action_runs).where(action_runs.c.incident_id == incident_id)
    return list(conn.execute(stmt.order_by(action_runs.c.id)))


def latest_of_rule(conn: Connection, rule: str, limit: int) -> list[Row[Any]]:
    """The rule's newest jobs, newest first (the dashboard's "last runs")."""
    stmt = (
        select(remediation_jobs)
        .where(remediation_jobs.c.rule == rule)
        .order_by(remediation_jobs.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt))


def outcomes_since(conn: Connection, since: datetime) -> dict[str, dict[str, int]]:
    """Jobs created since `since` (dry runs left out), counted by rule and state."""
    c = remediation_jobs.c
    stmt = (
        select(c.rule, c.state, func.count())
        .where(c.created_at >= since, c.dry_run.is_(False))
        .group_by(c.rule, c.state)
    )
    counts: dict[str, dict[str, int]] = {}
    for rule, state, count in conn.execute(stmt):
        counts.setdefault(rule, {})[state] = int(count)
    return counts
