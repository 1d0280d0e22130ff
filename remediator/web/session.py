"""Dashboard sign-in with the API tokens: a signed session cookie, roles and CSRF tokens.

Signing in with a token sets a cookie naming the token and an expiry, signed with HMAC-SHA256
under that token's own secret. Any replica with the same config verifies it; rotating or
removing a token ends its sessions; the role is read from the config on every request, so a
role lowered in the config applies at once. Forms carry a CSRF token derived the same way.
Without any API token configured the API is open, and so is the dashboard (as admin).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from remediator.api.auth import Authenticator, Token
from remediator.config import Role

COOKIE = "remediator_session"
LIFETIME = timedelta(hours=12)
ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class WebUser:
    """Who is looking at the dashboard, and what they may do."""

    name: str
    role: Role
    csrf: str
    open_access: bool = False

    def can(self, role: Role | str) -> bool:
        return self.role.allows(Role(role))


def sign_in(authenticator: Authenticator, presented: str, now: datetime) -> str | None:
    """The session cookie's value for a valid token, or None."""
    token = authenticator.token_for(presented.strip().encode())
    if token is None:
        return None
    expires = int((now + LIFETIME).timestamp())
    name = base64.urlsafe_b64encode(token.name.encode()).decode()
    return f"{name}.{expires}.{_mac(token, 'session', expires)}"


def user_of(authenticator: Authenticator, cookie: str | None, now: datetime) -> WebUser | None:
    """The signed-in user of a session cookie, or None (missing, forged, expired, revoked)."""
    if not authenticator.tokens:
        return WebUser(ANONYMOUS, Role.admin, csrf="", open_access=True)
    if not cookie:
        return None
    try:
        encoded, expires_text, signature = cookie.split(".")
        name = base64.urlsafe_b64decode(encoded.encode()).decode()
        expires = int(expires_text)
    except ValueError:
        return None
    if expires < now.timestamp():
        return None
    for token in authenticator.tokens_named(name):
        if hmac.compare_digest(_mac(token, "session", expires), signature):
            return WebUser(token.name, token.role, csrf=_mac(token, "csrf", expires))
    return None


def _mac(token: Token, purpose: str, expires: int) -> str:
    message = f"{purpose}:{token.name}:{expires}".encode()
    return hmac.new(token.secret, message, hashlib.sha256).hexdigest()
