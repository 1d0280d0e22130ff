"""The http action as rules write it, and the `executors.http` settings of the service config.

Secrets (bearer tokens, basic-auth passwords) live only in the settings, read from an
environment variable or a file; a rule names an endpoint and a body, never a credential.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from remediator.plugins import ActionSpec, Duration, TemplateStr
from remediator.rules.templating import Template, TemplateError, compile_template

__all__ = [
    "DEFAULT_EXPECT_STATUS",
    "MANAGED_HEADERS",
    "BasicAuthSettings",
    "HttpAction",
    "HttpSettings",
    "JsonBodyTemplate",
    "SecretSource",
    "header_name_problem",
]

DEFAULT_EXPECT_STATUS: Final = (200, 201, 202, 204)
# Headers remediator sets itself: framing headers a rule could use to smuggle requests, Host
# (which would route around allowed_hosts) and credentials (which belong in the settings).
MANAGED_HEADERS: Final = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "authorization"}
)
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 header field name


def header_name_problem(name: str) -> str | None:
    """Why `name` cannot be a rule's header, or None if it can."""
    if not _TOKEN.fullmatch(name):
        return f"header name {name!r} is not a valid HTTP field name"
    if name.lower() in MANAGED_HEADERS:
        hint = (
            "; configure bearer_token or basic_auth in executors.http"
            if name.lower() == "authorization"
            else ""
        )
        return f"header {name!r} is set by remediator, not by rules{hint}"
    return None


def _body_error(path: str, message: str) -> PydanticCustomError:
    # A message without context is used verbatim, so braces of templates stay as written.
    return PydanticCustomError("json_body", f"json{path}: {message}")


def _compile_body(value: Any, path: str = "") -> Any:
    """Compile every string leaf of a JSON body template; mapping keys stay literal text.

    The leaves become `Template`s, which the core's `render_params` renders wherever they
    sit, so rendered values are strings and are never parsed again.
    """
    if isinstance(value, Template) or value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        try:
            return compile_template(value)
        except TemplateError as error:
            raise _body_error(path, f"invalid template: {error.reason}") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _body_error(path, "JSON has no NaN or infinity")
        return value
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise _body_error(path, f"mapping key {key!r} must be a string")
        return {key: _compile_body(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_compile_body(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise _body_error(
        path,
        f"a {type(value).__name__} is not JSON; use mappings, lists, strings, numbers, "
        "booleans and null (quote dates)",
    )


def _body_source(value: Any) -> Any:
    """The body template as written: what `model_dump` and the rule API show."""
    if isinstance(value, Template):
        return value.source
    if isinstance(value, Mapping):
        return {key: _body_source(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_body_source(item) for item in value]
    return value


JsonBodyTemplate = Annotated[
    Any,
    BeforeValidator(_compile_body),
    PlainSerializer(_body_source),
    WithJsonSchema(
        {
            "description": "JSON body; every string in it is a Jinja2 template rendered to a "
            "string (keys stay literal)",
            "examples": [{"service": "{{ labels.service }}", "force": True}],
        }
    ),
]
"""A JSON value whose string leaves are templates, compiled at load (see `_compile_body`)."""


def _normalise_host(host: str) -> str:
    """`host` as `yarl.URL.host` gives it: lower case, no trailing dot, IPv6 unbracketed."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            pass
    if not host or any(char in host for char in "/:@[]?# "):
        raise ValueError(f"allowed_hosts: {host!r} is not a host name, e.g. deployer.internal")
    return host


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class HttpAction(ActionSpec):
    """Call an internal HTTP endpoint, e.g. a deployer's restart API."""

    type: Literal["http"]
    method: Annotated[Literal["GET", "POST", "PUT", "PATCH", "DELETE"], BeforeValidator(_upper)] = (
        "POST"
    )
    url: TemplateStr
    """http(s) URL; percent-encode label values, e.g. {{ labels.service | urlencode }}."""
    headers: dict[str, TemplateStr] = Field(default_factory=dict)
    """Extra request headers; values are templates and must not render line breaks."""
    body: JsonBodyTemplate = Field(None, alias="json")
    """JSON request body; its strings are templates and stay strings once rendered."""
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(
        default_factory=lambda: list(DEFAULT_EXPECT_STATUS), min_length=1
    )
    """Statuses that mean success; 5xx and 429 otherwise retry, other statuses fail."""

    @field_validator("headers")
    @classmethod
    def _valid_header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            problem = header_name_problem(name)
            if problem is not None:
                raise ValueError(problem)
        return headers


class SecretSource(BaseModel):
    """A secret read from an environment variable or a file, e.g. {env: DEPLOYER_TOKEN}."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    env: str | None = None
    """Name of an environment variable holding the secret."""
    file: Path | None = None
    """A file holding the secret (one trailing newline is cut); best an absolute path."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def reveal(self) -> str:
        """The secret's text, read now (so rotated files take effect); ValueError if missing."""
        if self.file is not None:
            try:
                text = self.file.read_text()
            except OSError as error:
                raise ValueError(f"cannot read secret file {self.file}: {error.strerror}") from None
            return text.removesuffix("\n").removesuffix("\r")
        assert self.env is not None
        if self.env not in os.environ:
            raise ValueError(f"environment variable {self.env} is not set")
        return os.environ[self.env]


class BasicAuthSettings(BaseModel):
    """HTTP basic authentication sent with every http action."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    username: str = Field(min_length=1, pattern=r"^[^:\x00-\x1f\x7f]+$")
    """The user name; it cannot contain a colon (RFC 7617)."""
    password: SecretSource


class HttpSettings(BaseModel):
    """The `executors.http` section of the service config."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    allowed_hosts: list[str] | None = None
    """Host names actions may call (exact, case-insensitive); unset allows any host."""
    timeout: Duration = timedelta(seconds=30)
    """Limit for one request, connect to last byte; the action's own timeout still applies."""
    verify_tls: bool = True
    """Check https certificates; turn off only for a test endpoint."""
    ca_file: Path | None = None
    """PEM file of the CA certificates that sign your internal endpoints."""
    bearer_token: SecretSource | None = None
    """Sent as `Authorization: Bearer …` with every request."""
    basic_auth: BasicAuthSettings | None = None
    """Sent as `Authorization: Basic …` with every request."""

    @field_validator("allowed_hosts")
    @classmethod
    def _normalise_hosts(cls, hosts: list[str] | None) -> list[str] | None:
        if hosts is None:
            return None
        return [_normalise_host(host) for host in hosts]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("give bearer_token or basic_auth, not both")
        # Label values can end up in a URL's host; without a host list a credential could be
        # sent wherever an alert points.
        if self.allowed_hosts is None and (self.bearer_token or self.basic_auth):
            raise ValueError("bearer_token and basic_auth need allowed_hosts")
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file has no effect with verify_tls: false")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        return self
