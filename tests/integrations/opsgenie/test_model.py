"""The opsgenie channel's settings and plugin declaration."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from remediator_integrations.opsgenie import PLUGIN, OpsgenieChannel, OpsgenieSettings

README = Path(__file__).resolve().parents[3] / "integrations" / "opsgenie" / "README.md"


def yaml_blocks(text: str) -> list[str]:
    parts = text.split("```yaml\n")[1:]
    return [part.split("```", 1)[0] for part in parts]


async def test_plugin_declares_the_opsgenie_type() -> None:
    assert PLUGIN.type == "opsgenie"
    assert PLUGIN.settings_model is OpsgenieSettings
    channel = PLUGIN.create(OpsgenieSettings.model_validate({"api_key": "k"}))
    assert isinstance(channel, OpsgenieChannel)
    await channel.close()


def test_readme_example_validates() -> None:
    [config] = yaml_blocks(README.read_text())
    for name, raw in yaml.safe_load(config)["channels"].items():
        assert raw.pop("type") == PLUGIN.type, name
        PLUGIN.settings_model.model_validate(raw)


def test_defaults() -> None:
    settings = OpsgenieSettings.model_validate({"api_key_env": "OG"})
    assert settings.url == "https://api.opsgenie.com"
    assert settings.timeout == timedelta(seconds=10)
    assert settings.priority_map == {"P1": "P1", "P2": "P2", "P3": "P3", "P4": "P4"}
    assert (settings.responders, settings.tags, settings.source) == ([], [], "remediator")


def test_inline_key_is_hidden_in_repr() -> None:
    assert "s3cret" not in repr(OpsgenieSettings.model_validate({"api_key": "s3cret"}))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "give exactly one of api_key, api_key_env or api_key_file"),
        ({"api_key": "k", "api_key_file": "/k"}, "got api_key, api_key_file"),
        ({"api_key_env": "OG", "apiKey": "k"}, "Extra inputs"),
        ({"api_key_env": "OG", "url": "api.opsgenie.com"}, "http:// or https://"),
        ({"api_key_env": "OG", "url": "https://api.opsgenie.com/?x=1"}, "base URL"),
        ({"api_key_env": "OG", "timeout": "0s"}, "positive"),
        ({"api_key_env": "OG", "priority_map": {"P1": "P0"}}, "priority_map.P1"),
        ({"api_key_env": "OG", "tags": ["t"] * 21}, "at most 20"),
        ({"api_key_env": "OG", "tags": ["t" * 51]}, "at most 50"),
        ({"api_key_env": "OG", "source": "s" * 101}, "at most 100"),
        ({"api_key_env": "OG", "responders": [{"type": "team"}]}, "exactly one of id"),
        (
            {"api_key_env": "OG", "responders": [{"type": "team", "id": "1", "name": "sre"}]},
            "exactly one of id",
        ),
        ({"api_key_env": "OG", "responders": [{"type": "user", "name": "al"}]}, "not name"),
        (
            {"api_key_env": "OG", "responders": [{"type": "team", "username": "al"}]},
            "not username",
        ),
        ({"api_key_env": "OG", "responders": [{"type": "group", "id": "1"}]}, "type"),
    ],
)
def test_invalid_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OpsgenieSettings.model_validate(settings)
