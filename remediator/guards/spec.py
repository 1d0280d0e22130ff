"""Guard settings as SREs write them: a rule's `guards:` mapping and the config defaults.

Validated by pydantic (so `remediator check` reports `file:line: message`), then compiled
into `remediator.guards.compiled.CompiledGuards` for the hot path. Every guard but the
maintenance windows and the global pause is set per rule; unset keys take the service
defaults (`guards:` in the config), and `false` switches a default guard off for a rule::

    guards:
      target: "{{ labels.instance }}"    # what one remediation touches (comma-separated)
      concurrency: 1                     # remediations at once per target
      cooldown: 30m                      # after a remediation of this rule on a target
      rate_limit: 5 per 1h               # or {limit: 5, per: 1h, key: "{{ labels.service }}"}
      blast_radius: {max_targets: 3, window: 1h, group: "{{ labels.cluster }}"}
      circuit_breaker: {failures: 3, cool_off: 30m}
      flapping: {max_flaps: 3, window: 1h}
      approval: required                 # or {priorities: [P1], timeout: 30m}
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from remediator.durations import Duration, format_duration
from remediator.incidents.priority import Priority

__all__ = [
    "Approval",
    "BlastRadius",
    "CircuitBreaker",
    "Flapping",
    "GuardDefaults",
    "GuardsSpec",
    "RateLimit",
]

_RATE: Final = re.compile(r"^\s*(\d+)\s+per\s+(\S+)\s*$")


def _check_template(source: str) -> str:
    # Imported here: remediator.rules.model imports this module for the rule model.
    from remediator.rules.model import check_template

    return check_template(source)


GuardTemplate = Annotated[
    str,
    Field(min_length=1),
    AfterValidator(_check_template),
    WithJsonSchema(
        {
            "type": "string",
            "description": "Jinja2 template over the alert: labels, annotations",
            "examples": ["{{ labels.instance }}", "{{ labels.namespace }}/{{ labels.pod }}"],
        }
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class RateLimit(_Strict):
    """At most `limit` remediations per `per` (a sliding window), per rule and `key`.

    Written as `5 per 1h`, or as a mapping to add a key."""

    limit: int = Field(ge=1)
    """How many remediations the window allows."""
    per: Duration
    """The sliding window, e.g. 1h."""
    key: GuardTemplate | None = None
    """Count separately per value of this template, e.g. "{{ labels.service }}"; default: one
    count for the whole rule."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = _RATE.match(value)
        if found is None:
            raise ValueError(
                f"write a rate limit as `<count> per <duration>`, e.g. 5 per 1h, not {value!r}"
            )
        return {"limit": int(found[1]), "per": found[2]}

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.per <= timedelta(0):
            raise ValueError("the rate-limit window (per) must be longer than 0s")
        return self


class BlastRadius(_Strict):
    """How much of a group automation may touch, and when too much is broken to try at all.

    A group is the targets whose `group` template renders alike (default: all targets of the
    rule). Percentages need `group_size`, the number of targets in a group."""

    max_targets: int | None = Field(None, ge=1)
    """At most this many distinct targets of a group remediated per `window`."""
    max_percent: float | None = Field(None, gt=0, le=100)
    """At most this share (0-100) of a group's `group_size` targets remediated per `window`."""
    window: Duration = timedelta(hours=1)
    """The sliding window the target counts cover."""
    group: GuardTemplate | None = None
    """Template naming a target's group, e.g. "{{ labels.cluster }}"."""
    group_size: int | None = Field(None, ge=1)
    """How many targets a group has (for the percentages), e.g. 40 nodes."""
    max_alerting: int | None = Field(None, ge=1)
    """Refuse while more than this many targets of the group have a firing alert of the rule:
    too much is broken for automation to be safe."""
    max_alerting_percent: float | None = Field(None, gt=0, le=100)
    """As `max_alerting`, as a share (0-100) of `group_size`."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        limits = (self.max_targets, self.max_percent, self.max_alerting, self.max_alerting_percent)
        if all(limit is None for limit in limits):
            raise ValueError(
                "set at least one of max_targets, max_percent, max_alerting, max_alerting_percent"
            )
        percents = self.max_percent is not None or self.max_alerting_percent is not None
        if percents and self.group_size is None:
            raise ValueError(
                "max_percent and max_alerting_percent need group_size (targets per group)"
            )
        if self.window <= timedelta(0):
            raise ValueError("window must be longer than 0s")
        return self


class CircuitBreaker(_Strict):
    """After `failures` failed or unverified remediations of the rule in a row, the rule's
    automation stops for `cool_off`; then one trial runs, and its outcome closes or reopens it."""

    failures: int = Field(3, ge=1)
    """Consecutive failed or unverified remediations that open the breaker."""
    cool_off: Duration = timedelta(minutes=30)
    """How long the breaker stays open before a trial remediation is allowed."""


class Flapping(_Strict):
    """An alert that resolved more than `max_flaps` times in `window` is escalated as flapping
    instead of remediated: acting on it again would only chase the flap."""

    max_flaps: int = Field(3, ge=1)
    """Resolutions of the same alert tolerated within the window."""
    window: Duration = timedelta(hours=1)
    """The sliding window, e.g. 1h."""


class Approval(_Strict):
    """A human must approve before the actions run; rejection or timeout escalates.

    `approval: required` asks for every remediation; `priorities` asks only for those."""

    required: bool = False
    """Ask for approval of every remediation of the rule."""
    priorities: list[Priority] = Field(default_factory=list)
    """Ask only for incidents of these priorities, e.g. [P1, P2]."""
    timeout: Duration = timedelta(hours=1)
    """How long the job waits for a decision; then the incident escalates."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "required":
            return {"required": True}
        if isinstance(value, str):
            raise ValueError(f"approval is `required` or a mapping, not {value!r}")
        return value

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.required and not self.priorities:
            raise ValueError("approval: set required: true or list priorities (or write false)")
        if self.timeout < timedelta(seconds=1):
            raise ValueError(f"timeout {format_duration(self.timeout)} is too short")
        return self

    def needed_for(self, priority: str) -> bool:
        """Whether an incident of `priority` needs an approval."""
        return self.required or priority in self.priorities


Off = Literal[False]


class _Switchable:
    """A guard that is a settings mapping, or `false` for off: one clear error, not one per
    branch of a union (`rate_limit: 5 every hour` names the rate-limit syntax only)."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model

    def _validate(self, value: Any) -> Any:
        if value is False or value is None or isinstance(value, self.model):
            return value
        return self.model.model_validate(value)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: (
                    value.model_dump(mode="json") if isinstance(value, BaseModel) else value
                )
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        choices: list[core_schema.CoreSchema | tuple[core_schema.CoreSchema, str]] = [
            self.model.__pydantic_core_schema__,
            core_schema.literal_schema([False]),
        ]
        return handler(core_schema.nullable_schema(core_schema.union_schema(choices)))


class GuardsSpec(_Strict):
    """A rule's `guards:`: each unset key takes the service default; `false` turns one off."""

    target: GuardTemplate | None = None
    """What one remediation touches, comma-separated for several. Default: the alert's
    `instance`, else `namespace/pod`, else `node`, else the incident key. Rendering to
    nothing is refused: an empty target set never means "everything"."""
    max_targets: int | None = Field(None, ge=1)
    """Refuse a remediation whose target renders to more names than this."""
    concurrency: int | None = Field(None, ge=1)
    """Remediations at once on one target (by any rule); more are blocked."""
    cooldown: Duration | None = None
    """After a remediation of this rule on a target ends, refuse another for this long."""
    rate_limit: Annotated[RateLimit | Off | None, _Switchable(RateLimit)] = None
    blast_radius: Annotated[BlastRadius | Off | None, _Switchable(BlastRadius)] = None
    circuit_breaker: Annotated[CircuitBreaker | Off | None, _Switchable(CircuitBreaker)] = None
    flapping: Annotated[Flapping | Off | None, _Switchable(Flapping)] = None
    approval: Annotated[Approval | Off | None, _Switchable(Approval)] = None


class GuardDefaults(_Strict):
    """Guard defaults for every rule (the config's `guards:`), and service-wide guards.

    Maintenance windows live in `remediator.guards.windows`; the config adds them."""

    max_targets: int = Field(10, ge=1)
    """Default for rules' `max_targets`."""
    concurrency: int = Field(1, ge=1)
    """Default for rules' `concurrency`: one remediation per target at a time."""
    cooldown: Duration = timedelta(0)
    """Default for rules' `cooldown` (0s: none)."""
    rate_limit: RateLimit | None = None
    blast_radius: BlastRadius | None = None
    circuit_breaker: CircuitBreaker | None = CircuitBreaker(
        failures=5, cool_off=timedelta(minutes=30)
    )
    """On by default: five failed or unverified remediations of a rule in a row stop it."""
    flapping: Flapping | None = Flapping(max_flaps=5, window=timedelta(hours=1))
    """On by default: an alert resolved more than five times in an hour is not remediated."""
    approval: Approval | None = None
