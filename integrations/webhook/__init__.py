"""The `webhook` channel: signed JSON to any HTTP receiver.

See README.md in this folder for the settings, the payload and how to verify it.
"""

from __future__ import annotations

from remediator.plugins import ChannelPlugin

from .channel import PAYLOAD_VERSION, WebhookChannel, create, payload
from .model import WebhookSettings
from .signature import sign, verify_signature

__all__ = [
    "PAYLOAD_VERSION",
    "PLUGIN",
    "WebhookChannel",
    "WebhookSettings",
    "payload",
    "sign",
    "verify_signature",
]

PLUGIN = ChannelPlugin(
    type="webhook",
    settings_model=WebhookSettings,
    create=create,
    description="POST a versioned JSON document signed with HMAC-SHA256 and a timestamp; "
    "429, 5xx and network errors are retried.",
)
