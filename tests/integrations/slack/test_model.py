"""The slack channel's settings and plugin declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from remediator_integrations.slack import PLUGIN, SlackChannel, SlackSettings

README = Path(__file__).resolve().parents[3] / "integrations" / "slack" / "README.md"


def settings(**fields: Any) -> SlackSettings:
    return SlackSettings.model_validate(fields)


async def test_plugin_declares_the_slack_type() -> None:
    assert PLUGIN.type == "slack"
    assert PLUGIN.settings_model is SlackSettings
    channel = PLUGIN.create(settings(webhook_url_env="SLACK_WEBHOOK_URL"))
    assert isinstance(channel, SlackChannel)
    await channel.close()


def test_readme_example_validates() -> None:
    block = README.read_text().split("```yaml\n")[1].split("```", 1)[0]
    for section in yaml.safe_load(block)["channels"].values():
        assert section.pop("type") == "slack"
        PLUGIN.settings_model.model_validate(section)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"webhook_url": "https://hooks.slack.com/services/T/B/x", "webhook_url_env": "X"},
        {"webhook_url_env": "X", "webhook_url_file": "/run/secrets/slack"},
    ],
)
def test_exactly_one_url_source(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of webhook_url"):
        settings(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"webhook_url_env": "X", "username": "remediator"},
        {"webhook_url_env": "X", "icon_emoji": ":fire:"},
        {"webhook_url_env": "X", "channel": "#sre"},
    ],
)
def test_unknown_keys_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        settings(**fields)


def test_inline_url_is_checked_and_kept_secret() -> None:
    with pytest.raises(ValidationError, match="webhook_url is not an http"):
        settings(webhook_url="hooks.slack.com/services/T/B/x")
    good = settings(webhook_url="https://hooks.slack.com/services/T/B/s3cr3t")
    assert "s3cr3t" not in repr(good)
    assert str(good.url()) == "https://hooks.slack.com/services/T/B/s3cr3t"


def test_timeout_is_a_positive_duration() -> None:
    assert settings(webhook_url_env="X").timeout.total_seconds() == 10
    assert settings(webhook_url_env="X", timeout="2s").timeout.total_seconds() == 2
    with pytest.raises(ValidationError, match="timeout must be positive"):
        settings(webhook_url_env="X", timeout="0")
