"""Settings of a Slack channel: the `channels.<name>` section with `type: slack`."""

from __future__ import annotations

from typing import ClassVar

from remediator.plugins import WebhookUrlSettings

__all__ = ["SlackSettings"]


class SlackSettings(WebhookUrlSettings):
    """A Slack incoming webhook (Slack app → Incoming Webhooks); it posts to one channel.

    ```yaml
    channels:
      sre-slack: {type: slack, webhook_url_env: SLACK_WEBHOOK_URL}
    ```
    The URL is sent exactly as Slack issued it, without re-quoting.
    """

    url_hint: ClassVar[str] = (
        "use the incoming webhook URL Slack shows, https://hooks.slack.com/services/…"
    )
