"""The email channel's settings and its plugin declaration."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from remediator_integrations.email import PLUGIN, EmailChannel, EmailSettings

from remediator.plugins import PluginError

BASE: dict[str, Any] = {"host": "smtp.example.com", "from": "remediator@example.com"}


def settings(**fields: Any) -> EmailSettings:
    return EmailSettings.model_validate({**BASE, **fields})


def problem(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        settings(**fields)
    return str(caught.value)


def test_defaults_are_submission_with_starttls() -> None:
    s = settings()
    assert (s.effective_port, s.use_starttls, s.tls, s.verify_tls) == (587, True, False, True)
    assert s.sender == "remediator@example.com"
    assert s.to == []


def test_implicit_tls_defaults_to_port_465_without_starttls() -> None:
    s = settings(tls=True)
    assert (s.effective_port, s.use_starttls) == (465, False)
    assert "not both" in problem(tls=True, starttls=True)


def test_plugin_declaration() -> None:
    assert PLUGIN.type == "email"
    assert PLUGIN.settings_model is EmailSettings
    assert isinstance(PLUGIN.create(settings()), EmailChannel)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"port": 25, "colour": "red"}, "Extra inputs are not permitted"),
        ({"username": "u"}, "username and a password go together"),
        ({"password": "p"}, "username and a password go together"),
        ({"username": "u", "password": "p", "password_env": "X"}, "one way only"),
        ({"username": "u", "password": "p", "starttls": False}, "travel in clear"),
        ({"from": "remediator@example.com\r\nBcc: x@example.com"}, "line break"),
        ({"from": "not an address"}, "is not an e-mail address"),
        ({"to": ["ok@example.com", "nope"]}, "is not an e-mail address"),
        ({"timeout": "0s"}, "timeout must be positive"),
        ({"verify_tls": False, "ca_file": "/ca.pem"}, "no effect"),
    ],
)
def test_invalid_settings_name_the_problem(fields: dict[str, Any], message: str) -> None:
    assert message in problem(**fields)


def test_a_missing_password_source_stops_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMEDIATOR_TEST_SMTP_PASSWORD", raising=False)
    s = settings(username="u", password_env="REMEDIATOR_TEST_SMTP_PASSWORD")
    with pytest.raises(PluginError, match="REMEDIATOR_TEST_SMTP_PASSWORD is not set"):
        PLUGIN.create(s)


def test_an_unreadable_ca_file_stops_the_service(tmp_path: Any) -> None:
    with pytest.raises(PluginError, match="ca_file"):
        PLUGIN.create(settings(ca_file=str(tmp_path / "missing.pem")))


def test_the_password_is_not_shown() -> None:
    s = settings(username="u", password="hunter2")
    assert "hunter2" not in repr(s)
    assert "hunter2" not in s.model_dump_json()
