"""The `email` channel: multipart (plain text + HTML) mail over SMTP with STARTTLS and auth.

See README.md in this folder for the settings and what a message contains.
"""

from __future__ import annotations

from remediator.plugins import ChannelPlugin

from .channel import EmailChannel, create
from .message import build_message
from .model import EmailSettings

__all__ = ["PLUGIN", "EmailChannel", "EmailSettings", "build_message"]

PLUGIN = ChannelPlugin(
    type="email",
    settings_model=EmailSettings,
    create=create,
    description="Mail plain text and HTML through SMTP (STARTTLS or TLS, AUTH); 4xx replies "
    "and connection errors are retried, 5xx replies are not.",
)
