"""The pagerduty channel's settings and plugin declaration."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from remediator_integrations.pagerduty import PLUGIN, PagerDutyChannel, PagerDutySettings

README = Path(__file__).resolve().parents[3] / "integrations" / "pagerduty" / "README.md"


def yaml_blocks(text: str) -> list[str]:
    parts = text.split("```yaml\n")[1:]
    return [part.split("```", 1)[0] for part in parts]


async def test_plugin_declares_the_pagerduty_type() -> None:
    assert PLUGIN.type == "pagerduty"
    assert PLUGIN.settings_model is PagerDutySettings
    channel = PLUGIN.create(PagerDutySettings.model_validate({"routing_key": "k" * 32}))
    assert isinstance(channel, PagerDutyChannel)
    await channel.close()


def test_readme_example_validates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    [config] = yaml_blocks(README.read_text())
    for name, raw in yaml.safe_load(config)["channels"].items():
        assert raw.pop("type") == PLUGIN.type, name
        PLUGIN.settings_model.model_validate(raw)


def test_defaults() -> None:
    settings = PagerDutySettings.model_validate({"routing_key_env": "PD"})
    assert settings.url == "https://events.pagerduty.com/v2/enqueue"
    assert settings.timeout == timedelta(seconds=10)
    assert settings.source is None
    assert settings.severity_map == {
        "P1": "critical",
        "P2": "error",
        "P3": "warning",
        "P4": "info",
    }


def test_inline_key_is_hidden_in_repr() -> None:
    settings = PagerDutySettings.model_validate({"routing_key": "s3cret" * 6})
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "give exactly one of routing_key, routing_key_env or routing_key_file"),
        ({"routing_key": ""}, "give exactly one"),
        ({"routing_key": "k", "routing_key_env": "PD"}, "got routing_key, routing_key_env"),
        ({"routing_key_env": "PD", "routing_key_file": "/k"}, "give exactly one"),
        ({"routing_key_env": "PD", "integration_key": "k"}, "Extra inputs"),
        ({"routing_key_env": "PD", "url": "events.pagerduty.com/v2/enqueue"}, "http:// or"),
        ({"routing_key_env": "PD", "url": "https://u:p@events.pagerduty.com/"}, "user:password"),
        ({"routing_key_env": "PD", "timeout": "0"}, "positive"),
        ({"routing_key_env": "PD", "timeout": "10"}, "invalid duration"),
        ({"routing_key_env": "PD", "severity_map": {"P1": "page"}}, "severity_map.P1"),
        ({"routing_key_env": "PD", "severity_map": {"P5": "info"}}, "severity_map.P5"),
        ({"routing_key_env": "PD", "source": ""}, "source"),
    ],
)
def test_invalid_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PagerDutySettings.model_validate(settings)
