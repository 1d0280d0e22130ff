"""The plugin boundary: what an action kind (an executor) or a verifier implements, and how
they are found.

This is the only module integrations import. An executor plugin is one folder under
`integrations/` and one entry point in `pyproject.toml`::

    [project.entry-points."remediator.executors"]
    ansible = "remediator_integrations.ansible:PLUGIN"

where `PLUGIN` is an `ExecutorPlugin`: the action's YAML `type`, its pydantic model (a
subclass of `ActionSpec`, which gives every action `timeout` and `retries`), an optional
settings model for the service config's `executors.<type>` section, and a factory.

The core renders an action's templates with the alert as data, then calls
`Executor.run(request)` with plain values only: label values never reach a shell, a
template engine or a playbook as code. The core enforces `timeout` (by cancelling `run`,
which must stop its work when cancelled) and retries only failures raised as
`ActionFailed(retryable=True)`.

A channel plugin (entry point group `remediator.channels`) delivers escalations to humans:
`Channel.send(notification)` in the system's real wire format, raising
`DeliveryFailed(retryable=…, retry_after=…)`; the core retries, records every attempt and
never lets one channel's outage block another. Its settings are the config's
`channels.<name>` section (minus `type`).

A verifier plugin (entry point group `remediator.verifiers`) answers one kind of `verify:`
check after remediation, e.g. `promql`: `Verifier.check(query)` says whether the fault is
gone. Its settings come from the config's `verifiers.<type>` section.
"""

from __future__ import annotations

import builtins
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, Self, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from yarl import URL

from remediator.durations import Duration
from remediator.errors import RemediatorError
from remediator.rules.model import TemplateStr

__all__ = [
    "CHANNEL_ENTRY_POINT_GROUP",
    "ENTRY_POINT_GROUP",
    "VERIFIER_ENTRY_POINT_GROUP",
    "ActionFailed",
    "ActionRequest",
    "ActionResult",
    "ActionSpec",
    "AttemptSummary",
    "Channel",
    "ChannelPlugin",
    "CheckFailed",
    "CheckResult",
    "DeliveryFailed",
    "DeliveryResult",
    "Duration",
    "Executor",
    "ExecutorContext",
    "ExecutorPlugin",
    "InboundChannel",
    "InboundEvent",
    "InboundRejected",
    "KnownResolution",
    "Notification",
    "PluginError",
    "TemplateStr",
    "Verifier",
    "VerifierPlugin",
    "WebhookUrlSettings",
    "channel_plugins",
    "checked_http_url",
    "executor_plugins",
    "read_secret",
    "retry_after_seconds",
    "tls_setting",
    "verifier_plugins",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "remediator.executors"
VERIFIER_ENTRY_POINT_GROUP = "remediator.verifiers"
CHANNEL_ENTRY_POINT_GROUP = "remediator.channels"
DEFAULT_ACTION_TIMEOUT = timedelta(minutes=5)


class ActionSpec(BaseModel):
    """Fields every action has; an action kind's model subclasses this one.

    Mark string fields that may use the alert's values with `TemplateStr`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    timeout: Duration = DEFAULT_ACTION_TIMEOUT
    """The action is cancelled and counts as failed after this long, e.g. 10m."""
    retries: int = Field(0, ge=0, le=10)
    """Further attempts after a retryable failure (connection error, HTTP 5xx or 429, an
    unreachable host), with exponential backoff and jitter; never after a validation error
    or a 4xx."""


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One attempt at one action, with its parameters already rendered to plain data."""

    job_id: int
    incident_id: int
    rule: str
    action_index: int
    attempt: int
    params: Mapping[str, Any]
    """The action model's fields (`type`, `timeout`, `retries` included), templates rendered."""
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    dry_run: bool
    """Record what would run (server-side dry run where the system has one); change nothing."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What a successful action did: a one-line summary for the timeline, full output."""

    summary: str
    output: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


class ActionFailed(RemediatorError):
    """The action did not do its job. `retryable` failures are tried again (see retries)."""

    def __init__(self, summary: str, *, retryable: bool = False, output: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.retryable = retryable
        self.output = output


class PluginError(RemediatorError):
    """An installed plugin is broken or its settings are invalid."""


class Executor(Protocol):
    """Runs one action kind. Created once per service; `run` may be called concurrently."""

    async def run(self, request: ActionRequest) -> ActionResult:
        """Do the action (or, with `request.dry_run`, only describe it); raise ActionFailed."""
        ...

    def check(self, params: Mapping[str, Any]) -> list[str]:
        """Problems a rule's action has before anything runs (a playbook that does not exist).

        `params` are the action's fields as written, templates unrendered.
        """
        ...

    async def close(self) -> None:
        """Release what `create` acquired (sessions, thread pools)."""
        ...


@dataclass(frozen=True, slots=True)
class ExecutorContext:
    """What the service gives an executor when it is created."""

    playbooks_dir: Path
    data_dir: Path
    """A directory the executor may use for per-run files (it cleans up after itself)."""
    settings: BaseModel | None
    """The validated `executors.<type>` config section, or None if the plugin has no model."""


@dataclass(frozen=True, slots=True)
class ExecutorPlugin:
    """An action kind as an entry point declares it."""

    type: str
    action_model: builtins.type[ActionSpec]
    create: Callable[[ExecutorContext], Executor]
    settings_model: builtins.type[BaseModel] | None = None
    description: str = ""


@cache
def executor_plugins() -> Mapping[str, ExecutorPlugin]:
    """Installed executor plugins by action `type`, loaded once from entry points."""
    return _load_plugins(ENTRY_POINT_GROUP, ExecutorPlugin)


@cache
def verifier_plugins() -> Mapping[str, VerifierPlugin]:
    """Installed verifier plugins by `verify:` key (e.g. `promql`), loaded once."""
    return _load_plugins(VERIFIER_ENTRY_POINT_GROUP, VerifierPlugin)


_P = TypeVar("_P", "ExecutorPlugin", "VerifierPlugin", "ChannelPlugin")


def _load_plugins(group: str, kind: builtins.type[_P]) -> dict[str, _P]:
    plugins: dict[str, _P] = {}
    for entry in entry_points(group=group):
        plugin = entry.load()
        if not isinstance(plugin, kind):
            raise PluginError(
                f"entry point {entry.name} = {entry.value} is not a {kind.__name__}; "
                "reinstall or remove the package that provides it"
            )
        if plugin.type != entry.name:
            raise PluginError(
                f"entry point {entry.name} provides type {plugin.type!r}; "
                "the entry point name must equal the type"
            )
        plugins[plugin.type] = plugin
    return plugins


@cache
def channel_plugins() -> Mapping[str, ChannelPlugin]:
    """Installed channel plugins by `type` (e.g. `slack`), loaded once from entry points."""
    return _load_plugins(CHANNEL_ENTRY_POINT_GROUP, ChannelPlugin)


# -- channels -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptSummary:
    """One action attempt of the incident's remediation, as a page shows it."""

    action: str
    """The action's type and position, e.g. `ansible action 1`."""
    attempt: int
    outcome: str
    """succeeded, failed, timeout or dry_run."""
    summary: str
    at: datetime


@dataclass(frozen=True, slots=True)
class KnownResolution:
    """What a human said fixed an earlier incident of the same rule or key."""

    note: str
    resolved_by: str
    at: datetime
    incident_id: int
    same_key: bool
    """True when the earlier incident had the same key (same service, host, ...)."""


@dataclass(frozen=True, slots=True)
class Notification:
    """What a channel delivers: one event of one incident, with everything a human needs.

    `event` is `trigger` (the incident needs a human), `acknowledge` (a human took it) or
    `resolve` (it is over). Channels that cannot express an event (a Slack webhook has no
    acknowledge) deliver it as a message or skip it, saying so in their result. Every text
    field may hold alert data: channels put it into their payload as data (JSON strings,
    escaped HTML), never into markup or templates as code.
    """

    event: Literal["trigger", "acknowledge", "resolve"]
    incident_id: int
    dedup_key: str
    """Stable per incident (`remediator-<id>`): PagerDuty's dedup_key, Opsgenie's alias."""
    title: str
    priority: str
    """P1 (most urgent) .. P4."""
    state: str
    reason: str
    """Why this event: the escalation reason, who acknowledged, how it resolved."""
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    runbook: str | None
    rule: str | None
    opened_at: datetime
    incident_url: str
    """Where a human opens the incident (the service's external_url)."""
    acknowledge_url: str | None = None
    """A signed, expiring link that acknowledges the incident, when links are configured."""
    attempts: tuple[AttemptSummary, ...] = ()
    """What automation tried, oldest first."""
    recipients: tuple[str, ...] = ()
    """Addresses the policy step names for this channel (e-mail), if any."""
    notification_id: int | None = None
    """Stable across retries of this notification: receivers can recognise a retry."""
    known_resolutions: tuple[KnownResolution, ...] = ()
    """What fixed earlier incidents like this one, newest first (triggers only)."""
    approval_url: str | None = None
    """A signed, expiring link to approve or reject the remediation that waits for a human
    (triggers of an approval request only), when links are configured."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """A delivered notification: one line for the timeline; `reference` is the receiving
    system's id for it, when it returns one (PagerDuty dedup_key, Opsgenie requestId)."""

    summary: str
    reference: str | None = None


class DeliveryFailed(RemediatorError):
    """A delivery did not go through. `retryable` ones (network errors, 5xx, 429) are tried
    again, after at least `retry_after` seconds when the receiver said so (Retry-After)."""

    def __init__(
        self, summary: str, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(summary)
        self.summary = summary
        self.retryable = retryable
        self.retry_after = retry_after


class Channel(Protocol):
    """Delivers notifications to one configured destination; `send` may run concurrently."""

    async def send(self, notification: Notification) -> DeliveryResult:
        """Deliver once (the core retries); raise DeliveryFailed."""
        ...

    async def close(self) -> None:
        """Release what `create` acquired (HTTP sessions)."""
        ...


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A human's action reported back by a paging system (PagerDuty webhooks, ...)."""

    action: Literal["acknowledge", "resolve"]
    dedup_key: str
    """The `Notification.dedup_key` the system was given: it names our incident."""
    actor: str
    """Who did it, as the system names them (e.g. the PagerDuty user's name)."""
    note: str = ""


class InboundRejected(RemediatorError):
    """An inbound request is not accepted: `status` 401 (signature), 400 (malformed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@runtime_checkable
class InboundChannel(Protocol):
    """A channel whose system reports acknowledgements and resolutions back.

    The core serves `POST /api/v1/channels/<name>/events` without an API token and hands
    each request here: verify it (a signature over the raw body), then return the events it
    carries; events of no interest (other event types) are simply left out.
    """

    def receive(self, body: bytes, headers: Mapping[str, str]) -> list[InboundEvent]:
        """The events in one inbound request; raise InboundRejected when it is not genuine."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelPlugin:
    """A channel kind as an entry point declares it."""

    type: str
    settings_model: builtins.type[BaseModel]
    """Validates `channels.<name>` without its `type` key; must forbid unknown keys."""
    create: Callable[[BaseModel], Channel]
    description: str = ""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A `Retry-After` header in seconds: delay-seconds (digits only) or an HTTP date, as RFC
    9110 defines it; a date in the past is 0; anything else is None (the core's own backoff
    decides). For `DeliveryFailed(retry_after=…)`."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def read_secret(
    what: str, inline: str | None = None, env: str | None = None, file: Path | None = None
) -> str | None:
    """A secret given one way of three: `<what>`, `<what>_env` or `<what>_file`.

    For channel settings such as `routing_key` / `routing_key_env` / `routing_key_file`:
    read when called, so a rotated file takes effect; None when none is given. Raises
    PluginError naming the key when more than one is given or the source is missing.
    """
    given = [name for name, value in (("", inline), ("_env", env), ("_file", file)) if value]
    if len(given) > 1:
        keys = ", ".join(what + suffix for suffix in given)
        raise PluginError(f"give {what} one way only, not {keys}")
    if env:
        if env not in os.environ:
            raise PluginError(f"{what}_env: environment variable {env} is not set")
        return os.environ[env]
    if file:
        try:
            return file.read_text().removesuffix("\n")
        except OSError as error:
            raise PluginError(f"{what}_file: cannot read {file}: {error.strerror}") from None
    return inline


def tls_setting(verify_tls: bool, ca_file: str | Path | None, key: str) -> ssl.SSLContext | bool:
    """What aiohttp's `ssl=` takes for a plugin's `verify_tls` / `ca_file` settings: False
    (no verification), True (the system's CAs) or a context trusting `ca_file`. Raises
    PluginError naming `key` (e.g. "executors.http.ca_file") when the file is unusable, so
    the service stops at start rather than at the first request."""
    if not verify_tls:
        return False
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as error:
        raise PluginError(f"{key} {ca_file}: {error}") from None


def checked_http_url(value: str, key: str, hint: str) -> URL:
    """`value` as an http(s) URL kept byte for byte as issued (tokens and signatures in its
    path or query stay intact); ValueError naming `key` and `hint`, never the URL itself,
    which may be a credential."""
    try:
        url = URL(value.strip(), encoded=True)
        valid = url.scheme in ("http", "https") and bool(url.host) and url.port is not None
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"{key} is not an http(s) URL; {hint}")
    return url


class WebhookUrlSettings(BaseModel):
    """Settings of a channel that posts to a secret webhook URL (Slack, Teams): exactly one
    of `webhook_url`, `webhook_url_env`, `webhook_url_file`, and a timeout. Subclasses set
    `url_hint`, the advice shown when the URL is not one."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    url_hint: ClassVar[str] = "use the webhook URL the service shows"

    webhook_url: SecretStr | None = None
    """The webhook URL itself; it is a credential, so prefer webhook_url_env or _file."""
    webhook_url_env: str | None = None
    """Name of an environment variable holding the webhook URL."""
    webhook_url_file: Path | None = None
    """A file holding the webhook URL, read at every send (a rotated URL takes effect)."""
    timeout: Duration = timedelta(seconds=10)
    """Limit for one POST, connect to last byte; a timeout is retried."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [self.webhook_url, self.webhook_url_env, self.webhook_url_file]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of webhook_url, webhook_url_env, webhook_url_file")
        if self.webhook_url is not None:
            checked_http_url(self.webhook_url.get_secret_value(), "webhook_url", self.url_hint)
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        return self

    def url(self) -> URL:
        """The webhook URL as of now; PluginError naming the key when it is missing or bad."""
        inline = self.webhook_url.get_secret_value() if self.webhook_url else None
        value = read_secret("webhook_url", inline, self.webhook_url_env, self.webhook_url_file)
        if not value:
            raise PluginError("webhook_url: the secret is empty")
        key = "webhook_url" + ("_env" if self.webhook_url_env else "")
        key += "_file" if self.webhook_url_file else ""
        try:
            return checked_http_url(value, key, self.url_hint)
        except ValueError as error:
            raise PluginError(str(error)) from None


# -- verifiers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One verification check: is the fault gone, and what the check saw, in one line."""

    healthy: bool
    summary: str


class CheckFailed(RemediatorError):
    """A check could not be made. `permanent` ones (a query the server rejects) will not
    succeed by waiting, so verification ends at once; others are tried at the next interval."""

    def __init__(self, summary: str, *, permanent: bool = False) -> None:
        super().__init__(summary)
        self.summary = summary
        self.permanent = permanent


class Verifier(Protocol):
    """Answers one kind of `verify:` check. Created once per service from its settings."""

    async def check(self, query: str) -> CheckResult:
        """Run the (already rendered) query once; raise CheckFailed when it cannot."""
        ...

    async def close(self) -> None:
        """Release what `create` acquired."""
        ...


@dataclass(frozen=True, slots=True)
class VerifierPlugin:
    """A verification kind as an entry point declares it."""

    type: str
    settings_model: builtins.type[BaseModel]
    create: Callable[[BaseModel], Verifier]
    description: str = ""


def validate_settings(plugin: ExecutorPlugin, raw: Mapping[str, Any] | None) -> BaseModel | None:
    """The plugin's settings from the config's `executors.<type>` section."""
    if plugin.settings_model is None:
        if raw:
            raise PluginError(f"executors.{plugin.type}: this action type takes no settings")
        return None
    return plugin.settings_model.model_validate(dict(raw or {}))
