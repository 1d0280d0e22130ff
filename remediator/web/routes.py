"""The dashboard's routes, added to the service's app by `add_dashboard`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from remediator import appkeys
from remediator.api.auth import Authenticator
from remediator.config import Role
from remediator.guards.breaker import BreakerState
from remediator.store import guards as guard_store
from remediator.web import incidents, login, quality, rules
from remediator.web.access import AUTHENTICATOR, USER, page
from remediator.web.render import render_error

STATIC = Path(__file__).parent / "static"


def add_dashboard(app: web.Application, authenticator: Authenticator) -> None:
    app[AUTHENTICATOR] = authenticator
    router = app.router
    router.add_get("/", _home)
    router.add_get("/login", login.login_form)
    router.add_post("/login", login.login)
    router.add_post("/logout", login.logout)
    router.add_get("/incidents", incidents.incident_list)
    router.add_get(r"/incidents/{id:\d+}", incidents.incident_page)
    router.add_post(r"/incidents/{id:\d+}/ack", incidents.acknowledge)
    router.add_post(r"/incidents/{id:\d+}/resolve", incidents.resolve)
    router.add_post(r"/incidents/{id:\d+}/notes", incidents.add_note)
    router.add_post(r"/jobs/{id:\d+}/approve", incidents.approve_job)
    router.add_post(r"/jobs/{id:\d+}/reject", incidents.reject_job)
    router.add_get("/rules", rules.rules_page)
    router.add_post("/rules/{rule}/close-breaker", _close_breaker)
    router.add_get("/quality", quality.quality_page)
    router.add_get("/quality/export", quality.quality_export)
    router.add_static("/static/", STATIC, append_version=False)


async def _home(_request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/incidents")


@page(Role.operator)
async def _close_breaker(request: web.Request) -> web.Response:
    rule = request.match_info["rule"]
    if all(r.name != rule for r in request.app[appkeys.RULES].current.rules):
        return render_error(request, 404, f"no rule named {rule!r} is loaded", user=request[USER])
    by, now = request[USER].name, datetime.now(UTC)
    await request.app[appkeys.DATABASE].write(
        lambda conn: guard_store.save_breaker(conn, rule, BreakerState(), by, now)
    )
    raise web.HTTPSeeOther("/rules")
