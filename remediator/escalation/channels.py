"""The configured channels: one plugin instance per `channels.<name>` entry."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from remediator.config import Config
from remediator.errors import Problem
from remediator.plugins import Channel, PluginError, channel_plugins
from remediator.remediation.executors import config_problem, describe_settings_error


def create_channels(config: Config) -> dict[str, Channel]:
    """Every configured channel by name; PluginError names the first bad one."""
    plugins = channel_plugins()
    channels: dict[str, Channel] = {}
    for name, raw in config.channels.items():
        kind = raw["type"]
        plugin = plugins.get(kind)
        if plugin is None:
            installed = ", ".join(sorted(plugins)) or "none"
            raise PluginError(f"channels.{name}: no channel type {kind!r}; installed: {installed}")
        settings = {key: value for key, value in raw.items() if key != "type"}
        try:
            channels[name] = plugin.create(plugin.settings_model.model_validate(settings))
        except ValidationError as exc:
            raise PluginError(f"channels.{name}: {describe_settings_error(exc)}") from None
    return channels


async def close_channels(channels: Mapping[str, Channel]) -> None:
    for channel in channels.values():
        await channel.close()


async def channel_problems(config: Config) -> list[Problem]:
    """What `remediator check` reports about the channels' settings."""
    try:
        channels = create_channels(config)
    except PluginError as exc:
        return [config_problem(config, exc)]
    await close_channels(channels)
    return []
