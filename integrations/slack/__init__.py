"""The `slack` channel: escalations as Block Kit messages through an incoming webhook.

See README.md in this folder for the settings, the message layout and what is retried.
"""

from __future__ import annotations

from remediator.plugins import ChannelPlugin

from .channel import SlackChannel, create
from .message import build_message
from .model import SlackSettings

__all__ = ["PLUGIN", "SlackChannel", "SlackSettings", "build_message"]

PLUGIN = ChannelPlugin(
    type="slack",
    settings_model=SlackSettings,
    create=create,
    description="Slack incoming webhook with Block Kit; 429 (Retry-After), 5xx and network "
    "errors are retried.",
)
