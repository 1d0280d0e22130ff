"""The service configuration: one YAML file plus `REMEDIATOR_*` environment overrides.

Validated once at boot by pydantic. Unknown keys are errors naming the key, and every
problem is reported as `file:line: message`, like rule files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from remediator.durations import Duration
from remediator.errors import ConfigError, Problem
from remediator.guards.spec import GuardDefaults
from remediator.guards.windows import MaintenanceWindow
from remediator.incidents.priority import DEFAULT_SEVERITY_MAP, Priority
from remediator.rules.problems import validation_problems, yaml_problem
from remediator.yaml_lines import YamlDocument, parse_yaml

ENV_PREFIX = "REMEDIATOR_"
CONFIG_ENV = "REMEDIATOR_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(_Strict):
    """A secret given inline, read from a file, or read from an environment variable."""

    value: str | None = Field(None, description="the secret itself (avoid in shared files)")
    file: Path | None = Field(None, description="a file holding the secret (trailing newline cut)")
    env: str | None = Field(None, description="an environment variable holding the secret")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(x is not None for x in (self.value, self.file, self.env)) != 1:
            raise ValueError("give exactly one of value, file or env")
        return self

    def reveal(self, base_dir: Path = Path()) -> str:
        """The secret's text, read now; raises ValueError that names the missing source.

        A relative `file` is relative to `base_dir`, the config file's directory.
        """
        if self.value is not None:
            return self.value
        if self.file is not None:
            path = self.file if self.file.is_absolute() else base_dir / self.file
            try:
                return path.read_text().rstrip("\n")
            except OSError as exc:
                raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
        assert self.env is not None
        if self.env not in os.environ:
            raise ValueError(f"environment variable {self.env} is not set")
        return os.environ[self.env]


class Role(StrEnum):
    """API roles, each including the rights of the ones before it."""

    viewer = "viewer"
    operator = "operator"
    admin = "admin"

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


class ApiToken(_Strict):
    """One API bearer token: `{name: ci, token: "…", role: admin}`."""

    name: str
    token: str | None = None
    token_file: Path | None = None
    token_env: str | None = None
    role: Role = Role.viewer

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if sum(x is not None for x in (self.token, self.token_file, self.token_env)) != 1:
            raise ValueError(
                f"token {self.name!r}: give exactly one of token, token_file, token_env"
            )
        return self

    def secret(self) -> Secret:
        return Secret(value=self.token, file=self.token_file, env=self.token_env)


class AuthConfig(_Strict):
    """API authentication. With no tokens the API is open (a warning is logged at boot)."""

    tokens: list[ApiToken] = []


class BasicAuth(_Strict):
    username: str
    password: str | None = None
    password_file: Path | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = (self.password, self.password_file, self.password_env)
        if sum(x is not None for x in sources) != 1:
            raise ValueError(
                "basic_auth: give exactly one of password, password_file, password_env"
            )
        return self

    def secret(self) -> Secret:
        return Secret(value=self.password, file=self.password_file, env=self.password_env)


class WebhookAuth(_Strict):
    """What Alertmanager's `http_config` can send: a bearer token or basic auth."""

    bearer_token: str | None = None
    bearer_token_file: Path | None = None
    bearer_token_env: str | None = None
    basic_auth: BasicAuth | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> Self:
        bearer = [self.bearer_token, self.bearer_token_file, self.bearer_token_env]
        count = sum(x is not None for x in bearer)
        if count > 1:
            raise ValueError("give one of bearer_token, bearer_token_file, bearer_token_env")
        if count + (self.basic_auth is not None) != 1:
            raise ValueError("configure either a bearer token or basic_auth")
        return self

    def bearer(self) -> Secret | None:
        if self.basic_auth is not None:
            return None
        return Secret(
            value=self.bearer_token, file=self.bearer_token_file, env=self.bearer_token_env
        )


class IntakeConfig(_Strict):
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0, description="larger bodies get 413")
    remembered_deliveries: int = Field(
        20_000,
        ge=0,
        description="stored deliveries (fingerprint, startsAt, status) kept in memory so that "
        "re-deliveries are answered without a database write; 0 turns this off",
    )
    auth: WebhookAuth | None = None


class SlaTarget(_Strict):
    acknowledge: Duration
    resolve: Duration


DEFAULT_SLA: dict[Priority, SlaTarget] = {
    Priority.P1: SlaTarget(acknowledge=timedelta(minutes=15), resolve=timedelta(hours=4)),
    Priority.P2: SlaTarget(acknowledge=timedelta(hours=1), resolve=timedelta(hours=8)),
    Priority.P3: SlaTarget(acknowledge=timedelta(hours=4), resolve=timedelta(hours=24)),
    Priority.P4: SlaTarget(acknowledge=timedelta(days=1), resolve=timedelta(days=5)),
}


class PrioritiesConfig(_Strict):
    severity_map: dict[str, Priority] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY_MAP))
    default: Priority = Priority.P4
    raise_after_alerts: int = Field(
        10, ge=2, description="an incident with this many alerts is raised one priority level"
    )
    sla: dict[Priority, SlaTarget] = Field(default_factory=lambda: dict(DEFAULT_SLA))

    @model_validator(mode="after")
    def _every_priority_has_sla(self) -> Self:
        missing = [p.value for p in Priority if p not in self.sla]
        if missing:
            merged = {**DEFAULT_SLA, **self.sla}
            object.__setattr__(self, "sla", merged)
        return self


class IncidentsConfig(_Strict):
    recurrence_window: Duration = Field(
        timedelta(hours=24),
        description="a new incident within this time of a resolved one is linked",
    )


class RemediationConfig(_Strict):
    dry_run: bool = Field(
        False,
        description="record what every action would do, with rendered parameters, and run "
        "nothing; a rule's own dry_run wins",
    )
    workers: int = Field(
        4,
        ge=0,
        le=64,
        description="remediation jobs run at once; 0 makes an intake-only replica whose jobs "
        "wait in the database for a replica with workers",
    )
    max_running_per_rule: int | None = Field(
        None,
        ge=1,
        description="jobs of one rule this replica runs at once (default: half its workers, "
        "at least 1), so a rule whose actions hang cannot hold up every other incident",
    )
    lease: Duration = Field(
        timedelta(seconds=60),
        description="a claimed job is renewed this often x3; a job whose lease lapsed "
        "(crash, restart) is marked interrupted",
    )
    poll_interval: Duration = Field(
        timedelta(seconds=1), description="how often idle workers look for queued jobs"
    )
    output_max_bytes: int = Field(
        64 * 1024, ge=1024, description="each action's stored output is cut to this size"
    )
    data_dir: Path = Field(
        Path("var/runs"), description="per-run files of executors (ansible-runner data dirs)"
    )
    verify_resolved_within: Duration = Field(
        timedelta(minutes=5),
        description="default verification window when a rule has actions but no verify",
    )


class EscalationStep(_Strict):
    """One step of a policy: notify channels now, or wait before the next step."""

    notify: list[str] | None = Field(None, min_length=1, description="channel names")
    to: list[str] = Field(
        default_factory=list, description="recipients for channels that take them (e-mail)"
    )
    wait: Duration | None = Field(None, description="pause before the next step, e.g. 10m")

    @model_validator(mode="after")
    def _notify_or_wait(self) -> Self:
        if (self.notify is None) == (self.wait is None):
            raise ValueError("a step is either notify: [channels] or wait: <duration>")
        if self.to and self.notify is None:
            raise ValueError("to: goes with notify:")
        return self


class EscalationPolicy(_Strict):
    """An ordered chain of steps; it stops as soon as a human acknowledges or it resolves."""

    steps: list[EscalationStep] = Field(min_length=1)
    repeat: int = Field(0, ge=0, le=100, description="run the whole chain again N more times")
    on_breach: str | None = Field(
        None,
        description="when an SLA is breached, switch to this policy; unset: go straight to "
        "the next step",
    )

    @model_validator(mode="after")
    def _repeats_wait(self) -> Self:
        if self.repeat and not any(step.wait for step in self.steps):
            raise ValueError("a policy that repeats needs a wait: step, or it pages in a loop")
        return self


class EscalationConfig(_Strict):
    """Who hears about incidents that automation could not fix."""

    default_policy: str | None = Field(None, description="used when nothing else chooses")
    by_priority: dict[Priority, str] = Field(
        default_factory=dict, description="policy by incident priority, e.g. P1: critical"
    )
    unmatched_policy: str | None = Field(
        None, description="escalate incidents of alerts no rule matched with this policy"
    )
    policies: dict[str, EscalationPolicy] = Field(default_factory=dict)
    max_delivery_attempts: int = Field(
        6, ge=1, le=20, description="tries per notification (429, 5xx, network errors)"
    )
    link_secret: Secret | None = Field(
        None,
        description="signs the acknowledge links in pages (HMAC-SHA256); unset: no links",
    )
    link_ttl: Duration = Field(
        timedelta(hours=24), description="how long an acknowledge link in a page works"
    )

    @model_validator(mode="after")
    def _policies_exist(self) -> Self:
        named = [self.default_policy, self.unmatched_policy, *self.by_priority.values()]
        named += [policy.on_breach for policy in self.policies.values()]
        for name in named:
            if name is not None and name not in self.policies:
                known = ", ".join(sorted(self.policies)) or "none defined"
                raise ValueError(f"policy {name!r} is not defined (policies: {known})")
        return self


class GuardsConfig(GuardDefaults):
    """`guards:`: defaults for every rule's guards, and the service-wide maintenance windows."""

    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    """Times when automation does not act (alerts still open incidents and escalate)."""


class Config(_Strict):
    """The whole service configuration."""

    listen: str = Field("0.0.0.0:9095", description="host:port for the HTTP server")
    database_url: str = "sqlite+aiosqlite:///var/remediator.db"
    rules: list[str] = Field(default_factory=lambda: ["rules/"])
    playbooks_dir: Path = Path("playbooks")
    external_url: str = Field("http://localhost:9095", description="how users reach this service")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    auth: AuthConfig = AuthConfig()
    intake: IntakeConfig = IntakeConfig()
    priorities: PrioritiesConfig = PrioritiesConfig()
    incidents: IncidentsConfig = IncidentsConfig()
    remediation: RemediationConfig = RemediationConfig()
    executors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="settings of each action type, by type, e.g. kubernetes: {context: prod}",
    )
    channels: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="notification channels by name, each with a type, e.g. sre-slack: "
        "{type: slack, webhook_url_env: SLACK_WEBHOOK_URL}",
    )
    escalation: EscalationConfig = EscalationConfig()
    guards: GuardsConfig = GuardsConfig()
    verifiers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="settings of each verification kind, e.g. promql: {url: "
        "http://prometheus:9090}",
    )
    base_dir: Path = Field(Path("."), exclude=True, description="directory of the config file")

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104

    @model_validator(mode="after")
    def _channels_exist(self) -> Self:
        for name, settings in self.channels.items():
            if not isinstance(settings.get("type"), str):
                raise ValueError(f"channels.{name} needs a type, e.g. type: slack")
        for policy_name, policy in self.escalation.policies.items():
            for step in policy.steps:
                for channel in step.notify or []:
                    if channel not in self.channels:
                        known = ", ".join(sorted(self.channels)) or "none configured"
                        raise ValueError(
                            f"escalation.policies.{policy_name}: channel {channel!r} is not "
                            f"in channels ({known})"
                        )
        return self

    @field_validator("listen")
    @classmethod
    def _listen_has_port(cls, value: str) -> str:
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"{value!r} must be host:port, e.g. 0.0.0.0:9095")
        return value

    def resolve_path(self, path: Path | str) -> Path:
        """Relative paths in the config are relative to the config file, as in Prometheus."""
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Overlay `REMEDIATOR_A__B=value` onto data["a"]["b"]; values are parsed as YAML."""
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if path[0] not in Config.model_fields or path[0] == "base_dir":
            raise ConfigError([Problem(name, 0, f"unknown setting {path[0]!r} in environment")])
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = yaml.safe_load(raw) if raw else raw


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file (optional) and the environment overrides."""
    environ = os.environ if environ is None else environ
    document = _read(path) if path is not None else YamlDocument(data=None, root=None)
    data: dict[str, Any] = dict(document.data or {})
    _apply_env(data, environ)
    if path is not None:
        data["base_dir"] = path.resolve().parent
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        label = str(path) if path is not None else "<environment>"
        raise ConfigError(validation_problems(label, document, exc, root=Config)) from None


def _read(path: Path) -> YamlDocument:
    try:
        document = parse_yaml(path.read_text())
    except OSError as exc:
        raise ConfigError([Problem(str(path), 0, f"cannot read file: {exc.strerror}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([yaml_problem(str(path), exc)]) from None
    if document.data is not None and not isinstance(document.data, dict):
        raise ConfigError([Problem(str(path), 1, "the config file must be a YAML mapping")])
    return document
