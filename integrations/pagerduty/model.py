"""The `channels.<name>` settings of a `type: pagerduty` channel (Events API v2)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from yarl import URL

from remediator.plugins import Duration, read_secret

__all__ = [
    "DEFAULT_SEVERITY_MAP",
    "DEFAULT_URL",
    "PagerDutySettings",
    "Priority",
    "Severity",
    "checked_endpoint",
]

Severity = Literal["critical", "error", "warning", "info"]
Priority = Literal["P1", "P2", "P3", "P4"]

DEFAULT_URL: Final = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_SEVERITY_MAP: Final[dict[Priority, Severity]] = {
    "P1": "critical",
    "P2": "error",
    "P3": "warning",
    "P4": "info",
}


def checked_endpoint(url: str) -> str:
    """`url` if it is an http(s) URL with a host and no credentials; ValueError otherwise."""
    try:
        parsed = URL(url)
    except ValueError as error:
        raise ValueError(f"url {url!r}: {error}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"url {url!r}: use an http:// or https:// URL with a host")
    if parsed.user is not None or parsed.password is not None:
        raise ValueError(f"url {url!r}: must not contain user:password")
    return url


class PagerDutySettings(BaseModel):
    """A PagerDuty channel: `channels.<name>` with `type: pagerduty`, minus `type`."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    routing_key: SecretStr | None = None
    """The integration key of an Events API v2 integration, inline; prefer routing_key_env
    or routing_key_file."""
    routing_key_env: str | None = Field(None, min_length=1)
    """Name of an environment variable holding the routing key."""
    routing_key_file: Path | None = None
    """A file holding the routing key (one trailing newline is cut), read for every event."""
    url: str = DEFAULT_URL
    """The Events API v2 enqueue endpoint, e.g. https://events.eu.pagerduty.com/v2/enqueue."""
    timeout: Duration = timedelta(seconds=10)
    """Limit for one request, connect to last byte; a timeout is retried."""
    source: str | None = Field(None, min_length=1)
    """`payload.source`; default: the alert's `instance` label, else `remediator`."""
    severity_map: dict[Priority, Severity] = Field(
        default_factory=lambda: dict(DEFAULT_SEVERITY_MAP)
    )
    """Incident priority → PagerDuty severity; keys left out keep their default."""
    webhook_secret: SecretStr | None = None
    """The signing secret of the V3 webhook subscription that reports acknowledgements and
    resolutions back, inline; prefer webhook_secret_env or webhook_secret_file."""
    webhook_secret_env: str | None = Field(None, min_length=1)
    """Name of an environment variable holding the webhook signing secret."""
    webhook_secret_file: Path | None = None
    """A file holding the webhook signing secret (one trailing newline is cut), read for
    every webhook."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return checked_endpoint(url)

    @field_validator("severity_map")
    @classmethod
    def _complete_severity_map(cls, given: dict[Priority, Severity]) -> dict[Priority, Severity]:
        return {**DEFAULT_SEVERITY_MAP, **given}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        given = [
            name
            for name, value in (
                ("routing_key", self.routing_key and self.routing_key.get_secret_value()),
                ("routing_key_env", self.routing_key_env),
                ("routing_key_file", self.routing_key_file),
            )
            if value
        ]
        if len(given) != 1:
            found = f" (got {', '.join(given)})" if given else ""
            raise ValueError(
                "give exactly one of routing_key, routing_key_env or routing_key_file" + found
            )
        webhook = [name for name, value in self._webhook_secret_sources() if value]
        if len(webhook) > 1:
            raise ValueError(
                "give at most one of webhook_secret, webhook_secret_env or webhook_secret_file"
                f" (got {', '.join(webhook)})"
            )
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        return self

    def _webhook_secret_sources(self) -> tuple[tuple[str, object], ...]:
        inline = self.webhook_secret.get_secret_value() if self.webhook_secret else None
        return (
            ("webhook_secret", inline),
            ("webhook_secret_env", self.webhook_secret_env),
            ("webhook_secret_file", self.webhook_secret_file),
        )

    @property
    def webhooks_enabled(self) -> bool:
        """Whether a webhook secret is configured (read or not): PagerDuty reports back."""
        return any(value for _, value in self._webhook_secret_sources())

    def severity(self, priority: str) -> Severity:
        """The PagerDuty severity for an incident priority; `error` for an unknown one."""
        for key, severity in self.severity_map.items():
            if key == priority:
                return severity
        return "error"

    def read_routing_key(self) -> str:
        """The routing key, read now so that a rotated file takes effect; PluginError if its
        environment variable or file is missing."""
        inline = self.routing_key.get_secret_value() if self.routing_key else None
        key = read_secret("routing_key", inline, self.routing_key_env, self.routing_key_file)
        return key or ""

    def read_webhook_secret(self) -> str | None:
        """The webhook signing secret, read now (a rotated file takes effect); None when none
        is configured; PluginError if its environment variable or file is missing."""
        inline = self.webhook_secret.get_secret_value() if self.webhook_secret else None
        return read_secret(
            "webhook_secret", inline, self.webhook_secret_env, self.webhook_secret_file
        )
