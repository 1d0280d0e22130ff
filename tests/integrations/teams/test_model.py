"""The teams channel's settings and plugin declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from remediator_integrations.teams import PLUGIN, TeamsChannel, TeamsSettings

README = Path(__file__).resolve().parents[3] / "integrations" / "teams" / "README.md"


def settings(**fields: Any) -> TeamsSettings:
    return TeamsSettings.model_validate(fields)


async def test_plugin_declares_the_teams_type() -> None:
    assert PLUGIN.type == "teams"
    assert PLUGIN.settings_model is TeamsSettings
    channel = PLUGIN.create(settings(webhook_url_env="TEAMS_WEBHOOK_URL"))
    assert isinstance(channel, TeamsChannel)
    await channel.close()


def test_readme_example_validates() -> None:
    block = README.read_text().split("```yaml\n")[1].split("```", 1)[0]
    for section in yaml.safe_load(block)["channels"].values():
        assert section.pop("type") == "teams"
        PLUGIN.settings_model.model_validate(section)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {
            "webhook_url": "https://prod-01.westeurope.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=x",
            "webhook_url_env": "X",
        },
        {"webhook_url_env": "X", "webhook_url_file": "/run/secrets/teams"},
    ],
)
def test_exactly_one_url_source(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of webhook_url"):
        settings(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"webhook_url_env": "X", "username": "remediator"},
        {"webhook_url_env": "X", "card_version": "1.5"},
    ],
)
def test_unknown_keys_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        settings(**fields)


def test_inline_url_is_checked_and_kept_secret() -> None:
    with pytest.raises(ValidationError, match="webhook_url is not an http"):
        settings(webhook_url="prod-01.westeurope.logic.azure.com/workflows/1")
    url = (
        "https://prod-01.westeurope.logic.azure.com:443/workflows/1/triggers/manual/paths/invoke"
        "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=s3cr3t"
    )
    good = settings(webhook_url=url)
    assert "s3cr3t" not in repr(good)
    assert good.url().raw_query_string == url.partition("?")[2]


def test_timeout_is_a_positive_duration() -> None:
    assert settings(webhook_url_env="X").timeout.total_seconds() == 10
    assert settings(webhook_url_env="X", timeout="2s").timeout.total_seconds() == 2
    with pytest.raises(ValidationError, match="timeout must be positive"):
        settings(webhook_url_env="X", timeout="0")
