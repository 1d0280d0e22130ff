"""Operational endpoints: /healthz, /readyz, /metrics and /-/reload."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from remediator import appkeys
from remediator.api.auth import requires
from remediator.api.errors import error_response, json_body
from remediator.api.models import ReloadResult
from remediator.config import Role
from remediator.guards.breaker import BreakerPosition
from remediator.store import guards as guard_store
from remediator.store import incidents as store
from remediator.store import jobs as job_store

log = logging.getLogger(__name__)


async def healthz(_request: web.Request) -> web.Response:
    """The process is up and serving; says nothing about its dependencies."""
    return json_body({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to take alerts: the database answers and rules are loaded.

    A paused automation (the kill switch) is still ready to take alerts: it says so in
    `automation`, so a dashboard or probe log shows why nothing is being remediated.
    """
    problems = []
    automation: dict[str, object] = {"state": "unknown"}
    try:
        await request.app[appkeys.DATABASE].ping()
        now = datetime.now(UTC)
        pause = await request.app[appkeys.DATABASE].read(
            lambda conn: guard_store.active_pause(conn, now)
        )
    except (SQLAlchemyError, OSError) as exc:
        problems.append(f"database unreachable: {exc.__class__.__name__}")
    else:
        automation = {"state": "active"}
        if pause is not None:
            automation = {
                "state": "paused",
                "paused_by": pause.by,
                "reason": pause.reason,
                "since": pause.since.isoformat(),
                "until": pause.until.isoformat() if pause.until else None,
            }
    if not request.app[appkeys.RULES].current.files:
        problems.append("no rules loaded")
    if problems:
        return error_response(503, "not ready", [{"path": "", "message": p} for p in problems])
    return json_body({"status": "ready", "automation": automation})


async def metrics(request: web.Request) -> web.Response:
    registry_metrics = request.app[appkeys.METRICS]
    try:
        counts = await request.app[appkeys.DATABASE].read(store.count_unresolved)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("metrics: could not count open incidents: %s", exc)
    else:
        # Read from the database so every replica reports the same, complete number.
        registry_metrics.incidents_open.clear()
        for state, priority, count in counts:
            registry_metrics.incidents_open.labels(state, priority).set(count)
    try:
        await _guard_gauges(request)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("metrics: could not read guard state: %s", exc)
    body = generate_latest(registry_metrics.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def _guard_gauges(request: web.Request) -> None:
    """The kill switch, breakers and the job queue, read from the database like the open
    incidents."""
    now = datetime.now(UTC)
    db = request.app[appkeys.DATABASE]
    pause = await db.read(lambda conn: guard_store.active_pause(conn, now))
    breakers = await db.read(guard_store.breakers)
    oldest = await db.read(job_store.oldest_queued)
    gauges = request.app[appkeys.METRICS]
    gauges.jobs_oldest_queued.set(0 if oldest is None else (now - oldest).total_seconds())
    gauges.automation_paused.set(0 if pause is None else 1)
    gauges.breaker_open.clear()
    for rule, row in breakers.items():
        is_open = row.position != BreakerPosition.closed.value
        gauges.breaker_open.labels(rule).set(1 if is_open else 0)


@requires(Role.admin)
async def reload(request: web.Request) -> web.Response:
    """Reload rule files, as Prometheus' /-/reload does; a bad file keeps the old rules."""
    # Off the event loop; on PostgreSQL the other replicas hear of it and reload too.
    outcome = await request.app[appkeys.RULES_BROADCAST].reload()
    body = ReloadResult(
        ok=outcome.ok,
        version=outcome.version,
        rules=outcome.rules,
        problems=[str(p) for p in outcome.problems],
    )
    return json_body(body.model_dump(mode="json"), status=200 if outcome.ok else 400)
