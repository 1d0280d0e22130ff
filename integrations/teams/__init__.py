"""The `teams` channel: escalations as Adaptive Cards through a Teams workflow webhook.

See README.md in this folder for the settings, the card layout and what is retried.
"""

from __future__ import annotations

from remediator.plugins import ChannelPlugin

from .card import build_message, escape_markdown
from .channel import TeamsChannel, create
from .model import TeamsSettings

__all__ = ["PLUGIN", "TeamsChannel", "TeamsSettings", "build_message", "escape_markdown"]

PLUGIN = ChannelPlugin(
    type="teams",
    settings_model=TeamsSettings,
    create=create,
    description="Microsoft Teams workflow webhook with an Adaptive Card; 429 (Retry-After), "
    "5xx and network errors are retried.",
)
