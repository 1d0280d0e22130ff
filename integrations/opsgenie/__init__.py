"""The `opsgenie` channel: Opsgenie Alert API v2 create, acknowledge and close by alias.

See README.md in this folder for the settings and the payload mapping.
"""

from __future__ import annotations

from remediator.plugins import ChannelPlugin

from .channel import OpsgenieChannel, create
from .model import OpsgenieSettings, Responder

__all__ = ["PLUGIN", "OpsgenieChannel", "OpsgenieSettings", "Responder"]

PLUGIN = ChannelPlugin(
    type="opsgenie",
    settings_model=OpsgenieSettings,
    create=create,
    description="Opsgenie Alert API v2: create, acknowledge and close alerts by alias; "
    "429, 5xx and network errors are retried.",
)
