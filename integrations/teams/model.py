"""Settings of a Microsoft Teams channel: `channels.<name>` with `type: teams`."""

from __future__ import annotations

from typing import ClassVar

from remediator.plugins import WebhookUrlSettings

__all__ = ["TeamsSettings"]


class TeamsSettings(WebhookUrlSettings):
    """A Teams workflow webhook (Workflows app / Power Automate) that posts to a channel.

    ```yaml
    channels:
      sre-teams: {type: teams, webhook_url_env: TEAMS_WEBHOOK_URL}
    ```
    The URL's query (sp=%2Ftriggers%2F…, sig=…) is kept byte for byte as issued: its `sig`
    is the credential.
    """

    url_hint: ClassVar[str] = (
        "copy the HTTP POST URL of the workflow's \"When a Teams webhook request is "
        'received" trigger'
    )
