"""Authentication in one middleware: API bearer tokens with roles, and webhook auth.

Handlers declare what they need with `@requires(Role.x)` or `@webhook_auth`; the
middleware enforces it before the handler runs. Secrets are read once at startup and
compared with `hmac.compare_digest`, so response time does not leak how much matched.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from remediator.api.errors import error_response
from remediator.appkeys import PRINCIPAL
from remediator.config import Config, Role

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

_ROLE_ATTR = "__remediator_role__"
_WEBHOOK_ATTR = "__remediator_webhook__"


def requires(role: Role) -> Callable[[H], H]:
    """Mark an API handler as needing at least `role`."""

    def mark(handler: H) -> H:
        setattr(handler, _ROLE_ATTR, role)
        return handler

    return mark


def webhook_auth(handler: H) -> H:
    """Mark a handler as the Alertmanager webhook (bearer or basic auth, if configured)."""
    setattr(handler, _WEBHOOK_ATTR, True)
    return handler


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    secret: bytes
    role: Role


class Authenticator:
    """Secrets resolved at startup; a missing secret file fails the boot, not a request."""

    def __init__(self, config: Config) -> None:
        base = config.base_dir
        self.tokens = [
            Token(t.name, t.secret().reveal(base).encode(), t.role) for t in config.auth.tokens
        ]
        hook = config.intake.auth
        self.webhook_bearer: bytes | None = None
        self.webhook_basic: tuple[bytes, bytes] | None = None
        if hook is not None:
            bearer = hook.bearer()
            if bearer is not None:
                self.webhook_bearer = bearer.reveal(base).encode()
            elif hook.basic_auth is not None:
                basic = hook.basic_auth
                self.webhook_basic = (basic.username.encode(), basic.secret().reveal(base).encode())
        if not self.tokens:
            log.warning("no API tokens configured: the API is open to anyone who can reach it")

    def api_principal(self, request: web.Request) -> Token | None:
        presented = _bearer(request)
        return None if presented is None else self.token_for(presented)

    def token_for(self, presented: bytes) -> Token | None:
        """The configured token whose secret is `presented`, compared in constant time."""
        found = None
        for token in self.tokens:  # check all, so timing does not reveal which one matched
            if hmac.compare_digest(presented, token.secret):
                found = token
        return found

    def tokens_named(self, name: str) -> list[Token]:
        return [token for token in self.tokens if token.name == name]

    def webhook_ok(self, request: web.Request) -> bool:
        if self.webhook_bearer is not None:
            presented = _bearer(request)
            return presented is not None and hmac.compare_digest(presented, self.webhook_bearer)
        if self.webhook_basic is not None:
            pair = _basic(request)
            if pair is None:
                return False
            user_ok = hmac.compare_digest(pair[0], self.webhook_basic[0])
            password_ok = hmac.compare_digest(pair[1], self.webhook_basic[1])
            return user_ok and password_ok
        return True


def _bearer(request: web.Request) -> bytes | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip().encode() if scheme.lower() == "bearer" and value.strip() else None


def _basic(request: web.Request) -> tuple[bytes, bytes] | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


def auth_middleware(authenticator: Authenticator) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        target = request.match_info.handler
        if getattr(target, _WEBHOOK_ATTR, False):
            if not authenticator.webhook_ok(request):
                scheme = "Basic" if authenticator.webhook_basic else "Bearer"
                return _unauthorized("webhook credentials missing or wrong", scheme)
            return await handler(request)
        needed: Role | None = getattr(target, _ROLE_ATTR, None)
        if needed is None or not authenticator.tokens:
            request[PRINCIPAL] = "anonymous"
            return await handler(request)
        token = authenticator.api_principal(request)
        if token is None:
            return _unauthorized("a valid API token is required: Authorization: Bearer <token>")
        if not token.role.allows(needed):
            return error_response(
                403, f"token {token.name!r} has role {token.role}; this needs {needed} or higher"
            )
        request[PRINCIPAL] = token.name
        return await handler(request)

    return middleware


def _unauthorized(message: str, scheme: str = "Bearer") -> web.Response:
    return error_response(
        401, message, headers={"WWW-Authenticate": f'{scheme} realm="remediator"'}
    )
