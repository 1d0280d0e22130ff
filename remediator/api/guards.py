"""Guard endpoints: status, the kill switch, closing a breaker, approving jobs.

Thin: parse, call the runner or the store, reply. Every change is made as the requesting
principal and shows on the incidents' timelines or in `GET /api/v1/guards`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy.engine import Connection

from remediator import appkeys
from remediator.api.auth import requires
from remediator.api.errors import error_response, json_body
from remediator.api.incidents import parse_body
from remediator.api.models import DecisionRequest, PauseRequest
from remediator.appkeys import PRINCIPAL
from remediator.config import Role
from remediator.guards.breaker import BreakerState
from remediator.guards.status import guard_status
from remediator.store import guards as store


@requires(Role.viewer)
async def get_guards(request: web.Request) -> web.Response:
    now = datetime.now(UTC)
    app = request.app
    rules = app[appkeys.RULES].current
    gate = app[appkeys.RUNNER].gate
    config = app[appkeys.CONFIG].guards
    status = await app[appkeys.DATABASE].read(
        lambda conn: guard_status(conn, config, rules, gate.guards_of, now)
    )
    return json_body(status)


@requires(Role.operator)
async def pause(request: web.Request) -> web.Response:
    body = await parse_body(request, PauseRequest)
    now = datetime.now(UTC)
    until = now + body.duration if body.duration else None
    by = request[PRINCIPAL]
    await request.app[appkeys.DATABASE].write(
        lambda conn: store.pause(conn, by, body.reason, until, now)
    )
    return await get_guards(request)


@requires(Role.operator)
async def resume(request: web.Request) -> web.Response:
    now = datetime.now(UTC)
    by = request[PRINCIPAL]
    was = await request.app[appkeys.DATABASE].write(lambda conn: store.resume(conn, by, now))
    if not was:
        return error_response(409, "automation is not paused: nothing to resume")
    request.app[appkeys.RUNNER].wake()
    return await get_guards(request)


@requires(Role.operator)
async def close_breaker(request: web.Request) -> web.Response:
    rule = request.match_info["rule"]
    if all(r.name != rule for r in request.app[appkeys.RULES].current.rules):
        return error_response(404, f"no rule named {rule!r} is loaded")
    now = datetime.now(UTC)
    by = request[PRINCIPAL]

    def close(conn: Connection) -> None:
        store.save_breaker(conn, rule, BreakerState(), by, now)

    await request.app[appkeys.DATABASE].write(close)
    return await get_guards(request)


@requires(Role.operator)
async def approve(request: web.Request) -> web.Response:
    note = (await parse_body(request, DecisionRequest)).note
    return await _decide(request, approve=True, note=note)


@requires(Role.operator)
async def reject(request: web.Request) -> web.Response:
    note = (await parse_body(request, DecisionRequest)).note
    return await _decide(request, approve=False, note=note)


async def _decide(request: web.Request, *, approve: bool, note: str | None) -> web.Response:
    job_id = int(request.match_info["id"])
    runner = request.app[appkeys.RUNNER]
    by = request[PRINCIPAL]
    try:
        if approve:
            job = await runner.approve(job_id, by, note)
        else:
            job = await runner.reject(job_id, by, note)
    except LookupError as exc:
        return error_response(404, str(exc))
    except ValueError as exc:
        return error_response(409, str(exc))
    request.app[appkeys.ESCALATION].wake()
    return json_body(
        {
            "id": job.id,
            "incident_id": job.incident_id,
            "rule": job.rule,
            "state": job.state,
            "approved_by": job.approved_by,
            "outcome": job.outcome,
        }
    )
