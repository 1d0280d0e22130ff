"""The settings of a `type: webhook` channel: the config's `channels.<name>` section."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from yarl import URL

from remediator.plugins import Duration

from .signature import DEFAULT_MAX_AGE

__all__ = ["MANAGED_HEADERS", "WebhookSettings"]

# Headers the channel sets itself: the signature scheme's, the body's framing, and Host
# (which would send the signed request somewhere else than `url` says).
MANAGED_HEADERS: Final = frozenset(
    {
        "content-type",
        "content-length",
        "transfer-encoding",
        "connection",
        "host",
        "x-remediator-timestamp",
        "x-remediator-signature",
        "x-remediator-delivery",
        "x-remediator-event",
    }
)
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field name
_BAD_VALUE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CR/LF would inject headers


class WebhookSettings(BaseModel):
    """A generic webhook: signed JSON POSTed to a URL of yours."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    url: str
    """The receiver's http:// or https:// URL."""
    secret: SecretStr | None = None
    """The shared HMAC key, inline; prefer secret_env or secret_file."""
    secret_env: str | None = None
    """Name of an environment variable holding the HMAC key."""
    secret_file: Path | None = None
    """A file holding the HMAC key (one trailing newline is cut); read for every delivery."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Static extra headers, e.g. a routing key of the receiver; not signed."""
    timeout: Duration = timedelta(seconds=10)
    """Limit for one delivery, connect to last byte; hitting it is retried."""
    max_age: Duration = timedelta(seconds=DEFAULT_MAX_AGE)
    """The replay window receivers should apply when verifying (see README); every attempt
    is signed afresh, so a retried delivery is never stale."""
    verify_tls: bool = True
    """Check the receiver's https certificate; turn off only for a test receiver."""
    ca_file: Path | None = None
    """PEM file of the CA certificates that sign an internal receiver's certificate."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        try:
            parsed = URL(url)
        except ValueError as error:
            raise ValueError(f"not a URL: {error}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("use an http:// or https:// URL with a host")
        return url

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP field name")
            if name.lower() in MANAGED_HEADERS:
                raise ValueError(f"header {name!r} is set by the webhook channel itself")
            if _BAD_VALUE.search(value):
                raise ValueError(f"header {name!r}: the value contains a control character")
        return headers

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        given = [self.secret, self.secret_env, self.secret_file]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of secret, secret_env or secret_file")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        if self.max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file has no effect with verify_tls: false")
        return self
