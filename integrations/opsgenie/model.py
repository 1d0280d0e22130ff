"""The `channels.<name>` settings of a `type: opsgenie` channel (Alert API v2)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from yarl import URL

from remediator.plugins import Duration, read_secret

__all__ = [
    "DEFAULT_PRIORITY_MAP",
    "DEFAULT_URL",
    "EU_URL",
    "OpsgeniePriority",
    "OpsgenieSettings",
    "Priority",
    "Responder",
]

Priority = Literal["P1", "P2", "P3", "P4"]
OpsgeniePriority = Literal["P1", "P2", "P3", "P4", "P5"]

DEFAULT_URL: Final = "https://api.opsgenie.com"
EU_URL: Final = "https://api.eu.opsgenie.com"
DEFAULT_PRIORITY_MAP: Final[dict[Priority, OpsgeniePriority]] = {
    "P1": "P1",
    "P2": "P2",
    "P3": "P3",
    "P4": "P4",
}
# Opsgenie's documented limits: at most 20 tags of at most 50 characters, source 100.
Tag = Annotated[str, Field(min_length=1, max_length=50)]


class Responder(BaseModel):
    """Who Opsgenie notifies: a team, user, escalation or schedule, by id or by name
    (`username` for users), e.g. {type: team, name: sre}."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    type: Literal["team", "user", "escalation", "schedule"]
    id: str | None = Field(None, min_length=1)
    """The responder's Opsgenie id."""
    name: str | None = Field(None, min_length=1)
    """The name of a team, escalation or schedule."""
    username: str | None = Field(None, min_length=1)
    """A user's username (their e-mail address)."""

    @model_validator(mode="after")
    def _one_identifier(self) -> Self:
        given = [key for key in ("id", "name", "username") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of id, name or username")
        if self.type == "user" and self.name is not None:
            raise ValueError("a user responder takes id or username, not name")
        if self.type != "user" and self.username is not None:
            raise ValueError(f"a {self.type} responder takes id or name, not username")
        return self

    def as_json(self) -> dict[str, str]:
        """The responder as the Alert API takes it."""
        return self.model_dump(exclude_none=True)


class OpsgenieSettings(BaseModel):
    """An Opsgenie channel: `channels.<name>` with `type: opsgenie`, minus `type`."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    api_key: SecretStr | None = None
    """The key of an Opsgenie API integration, inline; prefer api_key_env or api_key_file."""
    api_key_env: str | None = Field(None, min_length=1)
    """Name of an environment variable holding the API key."""
    api_key_file: Path | None = None
    """A file holding the API key (one trailing newline is cut), read for every request."""
    url: str = DEFAULT_URL
    """The API's base URL; https://api.eu.opsgenie.com for EU accounts."""
    timeout: Duration = timedelta(seconds=10)
    """Limit for one request, connect to last byte; a timeout is retried."""
    priority_map: dict[Priority, OpsgeniePriority] = Field(
        default_factory=lambda: dict(DEFAULT_PRIORITY_MAP)
    )
    """Incident priority → Opsgenie priority (P1..P5); keys left out keep their default."""
    responders: list[Responder] = Field(default_factory=list)
    """Teams, users, escalations or schedules to notify; none leaves routing to Opsgenie."""
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    """Tags on every alert (at most 20, each at most 50 characters)."""
    source: str = Field("remediator", min_length=1, max_length=100)
    """The alerts' `source` field."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        try:
            parsed = URL(url)
        except ValueError as error:
            raise ValueError(f"url {url!r}: {error}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"url {url!r}: use an http:// or https:// URL with a host")
        if parsed.user is not None or parsed.password is not None:
            raise ValueError(f"url {url!r}: must not contain user:password")
        if parsed.query_string or parsed.fragment:
            raise ValueError(f"url {url!r}: give the base URL, e.g. {DEFAULT_URL}")
        return url

    @field_validator("priority_map")
    @classmethod
    def _complete_priority_map(
        cls, given: dict[Priority, OpsgeniePriority]
    ) -> dict[Priority, OpsgeniePriority]:
        return {**DEFAULT_PRIORITY_MAP, **given}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        given = [
            name
            for name, value in (
                ("api_key", self.api_key and self.api_key.get_secret_value()),
                ("api_key_env", self.api_key_env),
                ("api_key_file", self.api_key_file),
            )
            if value
        ]
        if len(given) != 1:
            found = f" (got {', '.join(given)})" if given else ""
            raise ValueError("give exactly one of api_key, api_key_env or api_key_file" + found)
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        return self

    def priority(self, priority: str) -> OpsgeniePriority:
        """The Opsgenie priority for an incident priority; P3 (Opsgenie's default) if unknown."""
        for key, value in self.priority_map.items():
            if key == priority:
                return value
        return "P3"

    def read_api_key(self) -> str:
        """The API key, read now so that a rotated file takes effect; PluginError if its
        environment variable or file is missing."""
        inline = self.api_key.get_secret_value() if self.api_key else None
        return read_secret("api_key", inline, self.api_key_env, self.api_key_file) or ""
