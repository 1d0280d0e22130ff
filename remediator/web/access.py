"""Who may see and do what on the dashboard: the `page(role)` decorator every handler wears."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import quote

from aiohttp import web

from remediator.api.auth import Authenticator
from remediator.config import Role
from remediator.web.render import render_error
from remediator.web.session import COOKIE, WebUser, user_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
USER = web.RequestKey("web_user", WebUser)


def page(role: Role = Role.viewer) -> Callable[[H], H]:
    """A dashboard handler for users with at least `role`: others are sent to sign in (or
    refused with 403); a POST must carry the session's CSRF token and come from this site."""

    def wrap(handler: H) -> H:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            user = current_user(request)
            if user is None:
                raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
            problem = _refusal(request, user, role)
            if problem is None and request.method == "POST":
                problem = await _forged(request, user)
            if problem is not None:
                return render_error(request, 403, problem, user=user)
            request[USER] = user
            return await handler(request)

        return run  # type: ignore[return-value]

    return wrap


def current_user(request: web.Request) -> WebUser | None:
    return user_of(request.app[AUTHENTICATOR], request.cookies.get(COOKIE), datetime.now(UTC))


def _refusal(request: web.Request, user: WebUser, role: Role) -> str | None:
    if user.can(role):
        return None
    return f"{user.name} has role {user.role}; {request.method} {request.path} needs {role}"


async def _forged(request: web.Request, user: WebUser) -> str | None:
    """Why this form POST is not from our own page, or None."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null" and _host(origin) != request.host:
        return f"the form was sent from another site ({origin}); use the dashboard itself"
    if user.open_access:
        return None
    form = await request.post()
    if not hmac.compare_digest(str(form.get("csrf", "")), user.csrf):
        return "the form has expired or was not sent from this dashboard: reload and try again"
    return None


def _host(origin: str) -> str:
    return origin.split("://", 1)[-1].rstrip("/")
