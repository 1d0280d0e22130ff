"""The `pagerduty` channel: PagerDuty Events API v2 trigger, acknowledge and resolve.

See README.md in this folder for the settings and the payload mapping.
"""

from __future__ import annotations

from remediator.plugins import ChannelPlugin

from .channel import PagerDutyChannel, create
from .model import PagerDutySettings

__all__ = ["PLUGIN", "PagerDutyChannel", "PagerDutySettings"]

PLUGIN = ChannelPlugin(
    type="pagerduty",
    settings_model=PagerDutySettings,
    create=create,
    description="PagerDuty Events API v2: trigger, acknowledge and resolve by dedup_key; "
    "429, 5xx and network errors are retried.",
)
