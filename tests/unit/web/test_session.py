"""Dashboard sessions: signed with the token's own secret, so forging, expiry, rotation and a
role lowered in the config all take effect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from remediator.api.auth import Authenticator
from remediator.config import Config, Role
from remediator.web.session import LIFETIME, sign_in, user_of

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _auth(*tokens: dict[str, Any]) -> Authenticator:
    return Authenticator(Config.model_validate({"auth": {"tokens": list(tokens)}}))


OPERATOR = {"name": "olivia", "token": "op-secret", "role": "operator"}
VIEWER = {"name": "victor", "token": "view-secret", "role": "viewer"}


def test_a_valid_token_signs_in_with_its_name_and_role() -> None:
    auth = _auth(OPERATOR, VIEWER)
    cookie = sign_in(auth, "view-secret", NOW)
    assert cookie is not None
    assert "view-secret" not in cookie  # the cookie never carries the token itself
    user = user_of(auth, cookie, NOW)
    assert user is not None
    assert (user.name, user.role, user.can(Role.operator)) == ("victor", Role.viewer, False)


def test_an_unknown_token_does_not_sign_in() -> None:
    assert sign_in(_auth(OPERATOR), "guess", NOW) is None


def test_a_session_ends_when_it_expires() -> None:
    auth = _auth(OPERATOR)
    cookie = sign_in(auth, "op-secret", NOW)
    assert user_of(auth, cookie, NOW + LIFETIME - timedelta(seconds=1)) is not None
    assert user_of(auth, cookie, NOW + LIFETIME + timedelta(seconds=1)) is None


def test_a_forged_or_mangled_cookie_is_refused() -> None:
    auth = _auth(OPERATOR, VIEWER)
    cookie = sign_in(auth, "view-secret", NOW)
    assert cookie is not None
    name, expires, signature = cookie.split(".")
    other_name = sign_in(auth, "op-secret", NOW)
    assert other_name is not None
    forged = ".".join([other_name.split(".")[0], expires, signature])  # viewer's mac, op's name
    assert user_of(auth, forged, NOW) is None
    later = ".".join([name, str(int(expires) + 86400), signature])  # stretched expiry
    assert user_of(auth, later, NOW) is None
    assert user_of(auth, "garbage", NOW) is None
    assert user_of(auth, None, NOW) is None


def test_rotating_the_token_ends_its_sessions_and_a_lowered_role_applies_at_once() -> None:
    cookie = sign_in(_auth(OPERATOR), "op-secret", NOW)
    rotated = _auth({**OPERATOR, "token": "new-secret"})
    assert user_of(rotated, cookie, NOW) is None
    lowered = _auth({**OPERATOR, "role": "viewer"})
    user = user_of(lowered, cookie, NOW)
    assert user is not None
    assert user.role == Role.viewer


def test_without_tokens_the_dashboard_is_open_as_the_api_is() -> None:
    user = user_of(_auth(), None, NOW)
    assert user is not None
    assert (user.name, user.role, user.open_access) == ("anonymous", Role.admin, True)


def test_each_session_has_its_own_csrf_token() -> None:
    auth = _auth(OPERATOR)
    first = user_of(auth, sign_in(auth, "op-secret", NOW), NOW)
    second = user_of(auth, sign_in(auth, "op-secret", NOW + timedelta(seconds=5)), NOW)
    assert first is not None
    assert second is not None
    assert first.csrf
    assert first.csrf != second.csrf
