"""The settings of a `type: email` channel: the config's `channels.<name>` section."""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from remediator.plugins import Duration

__all__ = ["EmailSettings", "address_problem", "mailbox"]

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_ADDR_SPEC: Final = re.compile(r"[^\s@<>,;\"]+@[^\s@<>,;\"]+")


def address_problem(value: str) -> str | None:
    """Why `value` is not one mailbox (`a@b` or `Name <a@b>`), or None if it is."""
    if _CONTROL.search(value):
        # A line break in an address header would start a header of its own.
        return f"{value!r} contains a line break or control character"
    if not _ADDR_SPEC.fullmatch(parseaddr(value)[1]):
        return f"{value!r} is not an e-mail address like oncall@example.com"
    return None


def mailbox(value: str) -> str:
    """The bare address of `Name <a@b>`: what SMTP's MAIL FROM and RCPT TO take."""
    return parseaddr(value)[1]


class EmailSettings(BaseModel):
    """E-mail through an SMTP server (a relay, or your provider's submission port)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, populate_by_name=True
    )

    host: str = Field(min_length=1)
    """The SMTP server's host name (what its certificate names)."""
    port: int | None = Field(None, ge=1, le=65535)
    """Default 587 (submission with STARTTLS), or 465 with `tls: true`."""
    starttls: bool | None = None
    """Upgrade the connection with STARTTLS before anything is sent (default: yes, unless
    `tls` is on); a server that does not offer it fails the delivery."""
    tls: bool = False
    """Implicit TLS from the first byte (port 465, "SMTPS"); excludes starttls."""
    username: str | None = None
    """Log in with SMTP AUTH as this user (requires a password and TLS)."""
    password: SecretStr | None = None
    """The SMTP password, inline; prefer password_env or password_file."""
    password_env: str | None = None
    """Name of an environment variable holding the SMTP password."""
    password_file: Path | None = None
    """A file holding the SMTP password (one trailing newline is cut)."""
    sender: str = Field(alias="from")
    """The From address, e.g. `Remediator <remediator@example.com>`; written `from`."""
    to: list[str] = Field(default_factory=list)
    """Recipients when the escalation step names none; a step's recipients replace them."""
    timeout: Duration = timedelta(seconds=30)
    """Limit for each network operation (connect, each SMTP reply); hitting it is retried."""
    verify_tls: bool = True
    """Check the server's certificate and host name; turn off only for a test server."""
    ca_file: Path | None = None
    """PEM file of the CA certificates that sign an internal server's certificate."""

    @field_validator("sender")
    @classmethod
    def _one_sender(cls, value: str) -> str:
        problem = address_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("to")
    @classmethod
    def _recipients(cls, values: list[str]) -> list[str]:
        for value in values:
            problem = address_problem(value)
            if problem is not None:
                raise ValueError(problem)
        return values

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.tls and self.starttls:
            raise ValueError("give tls (implicit TLS, port 465) or starttls, not both")
        passwords = [self.password, self.password_env, self.password_file]
        given = sum(value is not None for value in passwords)
        if given > 1:
            raise ValueError("give password one way only: password, password_env or password_file")
        if (self.username is None) != (given == 0):
            raise ValueError("username and a password go together")
        if self.username is not None and not (self.tls or self.use_starttls):
            # Without TLS, AUTH PLAIN sends the password readable to anyone on the path.
            raise ValueError("username needs starttls or tls: the password would travel in clear")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file has no effect with verify_tls: false")
        return self

    @property
    def use_starttls(self) -> bool:
        """Whether the connection is upgraded with STARTTLS."""
        return (not self.tls) if self.starttls is None else self.starttls

    @property
    def effective_port(self) -> int:
        """The port to connect to."""
        if self.port is not None:
            return self.port
        return 465 if self.tls else 587
