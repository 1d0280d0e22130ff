"""The awx action as rules write it, and the `executors.awx` settings of the service config.

A rule names a job template (by name or id) and hands it alert data as `extra_vars` and a
`limit`; the controller's address and credentials live only in the settings, with secrets
read from an environment variable or a file.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Final, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from remediator_integrations.ansible.model import check_extravar_name

from remediator.plugins import ActionSpec, Duration, TemplateStr, checked_http_url, read_secret

__all__ = ["DEFAULT_API_PATH", "AwxAction", "AwxSettings", "ExtraVarName"]

DEFAULT_API_PATH: Final = "/api/v2/"
_API_PATH: Final = re.compile(r"/(?:[A-Za-z0-9_-]+/)*")
_URL_HINT: Final = "use the controller's address, e.g. https://controller.example.com"

ExtraVarName = Annotated[str, AfterValidator(check_extravar_name)]
"""A variable name (letters, digits, _), not `ansible_*`: connection settings stay out of
reach of alert data, as for the ansible action."""


class AwxAction(ActionSpec):
    """Launch an AWX / Automation Controller job template and follow the job to its end.

    Example::

        - type: awx
          job_template: restart-db
          extra_vars: {service: "{{ labels.service }}"}
          limit: "{{ labels.instance }}"
          timeout: 15m
    """

    type: Literal["awx"]
    job_template: str | None = Field(None, min_length=1, max_length=512)
    """The job template's name, exactly as the controller shows it (not a template)."""
    job_template_id: int | None = Field(None, ge=1)
    """Or the job template's numeric id; give exactly one of the two."""
    extra_vars: dict[ExtraVarName, TemplateStr] = Field(default_factory=dict)
    """Variables for the playbook; values are templates and reach the job as plain strings.
    The template must have "Prompt on launch" for variables."""
    limit: TemplateStr | None = None
    """Host pattern for the job, e.g. "{{ labels.instance }}"; the template must have
    "Prompt on launch" for limit."""

    @model_validator(mode="after")
    def _one_template(self) -> Self:
        if (self.job_template is None) == (self.job_template_id is None):
            raise ValueError("give exactly one of job_template (a name) or job_template_id")
        return self


def _checked_base_url(url: str | None) -> str | None:
    """`url` without a trailing slash, if it is an http(s) base URL; else ValueError."""
    if url is None:
        return None
    checked = checked_http_url(url, "url", _URL_HINT)
    if checked.user is not None or checked.password is not None:
        raise ValueError("url must not contain user:password; use token or username/password")
    if checked.query_string or checked.fragment:
        raise ValueError(f"url must not have a query or fragment; {_URL_HINT}")
    return str(checked).rstrip("/")


class AwxSettings(BaseModel):
    """The `executors.awx` section of the service config."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    url: str | None = None
    """The controller's base URL, e.g. https://controller.example.com; unset: awx actions fail
    with a message saying so (the service still starts)."""
    api_path: str = DEFAULT_API_PATH
    """Path of the API under `url`: /api/v2/ for AWX and Controller 4.x; /api/controller/v2/
    behind the AAP 2.5 platform gateway."""
    token: SecretStr | None = None
    """An OAuth2 token, sent as `Authorization: Bearer …`, inline; prefer token_env or
    token_file."""
    token_env: str | None = Field(None, min_length=1)
    """Name of an environment variable holding the token."""
    token_file: Path | None = None
    """A file holding the token (one trailing newline is cut), read for every request."""
    username: str | None = Field(None, min_length=1, pattern=r"^[^:\x00-\x1f\x7f]+$")
    """Or HTTP basic authentication: the user name (no colon)."""
    password: SecretStr | None = None
    """The basic-auth password, inline; prefer password_env or password_file."""
    password_env: str | None = Field(None, min_length=1)
    """Name of an environment variable holding the password."""
    password_file: Path | None = None
    """A file holding the password, read for every request."""
    verify_tls: bool = True
    """Check the controller's https certificate; turn off only for a test controller."""
    ca_file: Path | None = None
    """PEM file of the CA certificates that sign the controller's certificate."""
    request_timeout: Duration = timedelta(seconds=30)
    """Limit for one API request, connect to last byte; the action's `timeout` bounds the
    whole run (launch, following the job, its output)."""
    poll_interval: Duration = timedelta(seconds=2)
    """First wait between two looks at the job's status; it doubles after each look..."""
    max_poll_interval: Duration = timedelta(seconds=30)
    """...up to this long."""

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str | None) -> str | None:
        return _checked_base_url(url)

    @field_validator("api_path")
    @classmethod
    def _valid_api_path(cls, path: str) -> str:
        if not _API_PATH.fullmatch(path) or path == "/":
            raise ValueError("api_path must look like /api/v2/ (leading and trailing slash)")
        return path

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        tokens = self._given(("token", "token_env", "token_file"))
        passwords = self._given(("password", "password_env", "password_file"))
        if len(tokens) > 1:
            raise ValueError(f"give token one way only, not {', '.join(tokens)}")
        if len(passwords) > 1:
            raise ValueError(f"give password one way only, not {', '.join(passwords)}")
        if tokens and (self.username or passwords):
            raise ValueError("give a token or username and password, not both")
        if bool(self.username) != bool(passwords):
            raise ValueError("basic authentication needs both username and a password")
        has_credentials = bool(tokens or self.username)
        if self.url is None and has_credentials:
            raise ValueError("credentials are given but url is not; set the controller's url")
        if self.url is not None and not has_credentials:
            raise ValueError(
                "the controller needs credentials: give token_env or token_file (an OAuth2 "
                "token), or username with password_env or password_file"
            )
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file has no effect with verify_tls: false")
        for name in ("request_timeout", "poll_interval", "max_poll_interval"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.max_poll_interval < self.poll_interval:
            raise ValueError("max_poll_interval must not be shorter than poll_interval")
        return self

    def _given(self, names: tuple[str, ...]) -> list[str]:
        return [name for name in names if getattr(self, name)]

    def token_value(self) -> str | None:
        """The bearer token as of now (a rotated file takes effect); PluginError if missing."""
        inline = self.token.get_secret_value() if self.token else None
        return read_secret("token", inline, self.token_env, self.token_file)

    def password_value(self) -> str | None:
        """The basic-auth password as of now; PluginError if its source is missing."""
        inline = self.password.get_secret_value() if self.password else None
        return read_secret("password", inline, self.password_env, self.password_file)
