"""The webhook channel's settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from remediator_integrations.webhook import PLUGIN, WebhookSettings


def settings(**fields: Any) -> WebhookSettings:
    return WebhookSettings.model_validate({"url": "https://hooks.example.com/x", **fields})


def problem(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        settings(**fields)
    return str(caught.value)


def test_defaults() -> None:
    s = settings(secret_env="HOOK_SECRET")
    assert (s.timeout, s.max_age, s.headers, s.verify_tls) == (
        timedelta(seconds=10),
        timedelta(minutes=5),
        {},
        True,
    )
    assert PLUGIN.type == "webhook"
    assert PLUGIN.settings_model is WebhookSettings


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of secret, secret_env or secret_file"),
        ({"secret": "a", "secret_env": "B"}, "exactly one of secret, secret_env or secret_file"),
        ({"secret": "a", "colour": "red"}, "Extra inputs are not permitted"),
        ({"secret": "a", "url": "ftp://hooks.example.com/"}, "http:// or https://"),
        ({"secret": "a", "url": "/relative"}, "http:// or https://"),
        ({"secret": "a", "headers": {"Bad Name": "x"}}, "not a valid HTTP field name"),
        ({"secret": "a", "headers": {"X-A": "1\r\nX-B: 2"}}, "control character"),
        ({"secret": "a", "headers": {"x-remediator-signature": "v1=0"}}, "set by the webhook"),
        ({"secret": "a", "headers": {"Content-Type": "text/plain"}}, "set by the webhook"),
        ({"secret": "a", "timeout": "0s"}, "timeout must be positive"),
        ({"secret": "a", "verify_tls": False, "ca_file": "/ca.pem"}, "no effect"),
    ],
)
def test_invalid_settings_name_the_problem(fields: dict[str, Any], message: str) -> None:
    assert message in problem(**fields)


def test_the_secret_is_not_shown() -> None:
    s = settings(secret="hunter2")
    assert "hunter2" not in repr(s)
    assert "hunter2" not in s.model_dump_json()
