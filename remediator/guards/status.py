"""What operators see of the guards: `GET /api/v1/guards`, `remediator guards`, /metrics.

Read from the database, so every replica shows the same state: the pause, maintenance windows,
each rule's guards with its breaker and rate-limit usage, targets being remediated, and jobs
waiting for approval.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from remediator.config import GuardsConfig
from remediator.guards.compiled import Guards, describe
from remediator.rules import RuleSet
from remediator.store import guards as store
from remediator.store import jobs as job_store


def guard_status(
    conn: Connection,
    config: GuardsConfig,
    rules: RuleSet,
    guards_of: Callable[[Any], Guards],
    now: datetime,
) -> dict[str, Any]:
    """Everything about the guards as JSON-ready data."""
    pause = store.active_pause(conn, now)
    effective = {rule.name: guards_of(rule) for rule in rules.rules if rule.remediates}
    longest = max(
        (g.rate_limit.per for g in effective.values() if g.rate_limit), default=timedelta(0)
    )
    usage = store.rate_usage(conn, now - longest) if longest else []
    breakers = store.breakers(conn)
    return {
        "paused": None
        if pause is None
        else {
            "by": pause.by,
            "reason": pause.reason,
            "since": pause.since.isoformat(),
            "until": pause.until.isoformat() if pause.until else None,
        },
        "maintenance_windows": [
            {
                "name": window.name,
                "active": window.is_active(now),
                "ends_at": _iso(window.ends_at(now)),
                "matchers": list(window.matchers),
            }
            for window in config.maintenance_windows
        ],
        "rules": [
            _rule(name, guards, breakers.get(name), usage, conn, now)
            for name, guards in effective.items()
        ],
        "running": [
            {"target": row.target, "rule": row.rule, "since": row.started_at.isoformat()}
            for row in store.running(conn)
        ],
        "approvals": [
            {
                "job_id": job.id,
                "incident_id": job.incident_id,
                "rule": job.rule,
                "due_at": _iso(job.approval_due_at),
            }
            for job in job_store.awaiting(conn)
        ],
    }


def _rule(
    name: str,
    guards: Guards,
    breaker: Any,
    usage: list[Any],
    conn: Connection,
    now: datetime,
) -> dict[str, Any]:
    rate = guards.rate_limit
    used = []
    if rate is not None:
        used = [
            {"key": row.rate_key, "used": store.rate_used(conn, name, row.rate_key, now - rate.per)}
            for row in usage
            if row.rule == name
        ]
    return {
        "rule": name,
        "guards": describe(guards),
        "breaker": {
            "state": breaker.position if breaker else "closed",
            "failures": breaker.failures if breaker else 0,
            "open_until": _iso(breaker.open_until) if breaker else None,
            "trial_until": _iso(breaker.trial_until) if breaker else None,
            "changed_at": _iso(breaker.updated_at) if breaker else None,
            "changed_by": breaker.updated_by if breaker else None,
        },
        "rate_limit_usage": [u for u in used if u["used"]],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
