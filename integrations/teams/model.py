"""Settings of a Microsoft Teams channel: `channels.<name>` with `type: teams`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator
from yarl import URL

from remediator.plugins import Duration, PluginError, read_secret

__all__ = ["TeamsSettings", "checked_webhook_url"]


def checked_webhook_url(value: str, key: str) -> URL:
    """`value` as the URL to post to; ValueError naming `key` (never the URL: its `sig`
    query parameter is the credential)."""
    try:
        # encoded=True keeps the query (sp=%2Ftriggers%2F…, sig=…) byte for byte as issued.
        url = URL(value.strip(), encoded=True)
        valid = url.scheme in ("http", "https") and bool(url.host) and url.port is not None
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(
            f"{key} is not an http(s) URL; copy the HTTP POST URL of the workflow's "
            '"When a Teams webhook request is received" trigger'
        )
    return url


class TeamsSettings(BaseModel):
    """A Teams workflow webhook (Workflows app / Power Automate) that posts to a channel.

    ```yaml
    channels:
      sre-teams: {type: teams, webhook_url_env: TEAMS_WEBHOOK_URL}
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    webhook_url: SecretStr | None = None
    """The workflow's URL itself; its `sig` is a credential, so prefer _env or _file."""
    webhook_url_env: str | None = None
    """Name of an environment variable holding the workflow's URL."""
    webhook_url_file: Path | None = None
    """A file holding the workflow's URL, read at every send (a rotated URL takes effect)."""
    timeout: Duration = timedelta(seconds=10)
    """Limit for one POST, connect to last byte; a timeout is retried."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [self.webhook_url, self.webhook_url_env, self.webhook_url_file]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of webhook_url, webhook_url_env, webhook_url_file")
        if self.webhook_url is not None:
            checked_webhook_url(self.webhook_url.get_secret_value(), "webhook_url")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        return self

    def url(self) -> URL:
        """The webhook URL as of now; PluginError naming the key when it is missing or bad."""
        inline = self.webhook_url.get_secret_value() if self.webhook_url else None
        value = read_secret("webhook_url", inline, self.webhook_url_env, self.webhook_url_file)
        if not value:
            raise PluginError("webhook_url: the secret is empty")
        key = (
            "webhook_url_env"
            if self.webhook_url_env
            else "webhook_url_file"
            if self.webhook_url_file
            else "webhook_url"
        )
        try:
            return checked_webhook_url(value, key)
        except ValueError as error:
            raise PluginError(str(error)) from None
