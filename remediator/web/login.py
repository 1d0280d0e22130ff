"""Signing in and out of the dashboard with an API token."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from remediator.web.access import AUTHENTICATOR, current_user, page
from remediator.web.render import render
from remediator.web.session import COOKIE, LIFETIME, sign_in

log = logging.getLogger(__name__)


async def login_form(request: web.Request) -> web.Response:
    if current_user(request) is not None:
        raise web.HTTPSeeOther(_next(request.query.get("next")))
    return render(
        request, "login.html", user=None, next=_next(request.query.get("next")), error=None
    )


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    target = _next(str(form.get("next", "")))
    cookie = sign_in(request.app[AUTHENTICATOR], str(form.get("token", "")), datetime.now(UTC))
    if cookie is None:
        log.warning("dashboard sign-in refused from %s: unknown token", request.remote)
        return render(
            request, "login.html", user=None, status=401, next=target,
            error="That token is not one this service knows. Paste the whole API token.",
        )  # fmt: skip
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite="Lax",  # links from pages and chat still open the dashboard signed in
        secure=request.secure,
        path="/",
    )
    raise response


@page()
async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


def _next(target: str | None) -> str:
    """Where to go after signing in: only a path on this site (never `//elsewhere`)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        # Browsers drop tabs and newlines from a Location: "/\t/evil" would become "//evil".
        and all(c.isprintable() and not c.isspace() for c in target)
    ):
        return target
    return "/incidents"
