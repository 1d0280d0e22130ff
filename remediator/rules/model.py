"""The rule file as SREs write it: pydantic models, used only to validate and to emit JSON Schema.

The hot path never sees these models; `compiled.py` turns a validated `Rule` into a frozen
`CompiledRule`. A rule file looks like::

    rules:
      - name: restart-crashlooping-pod
        match: ['alertname="KubePodCrashLooping"', 'namespace=~"shop|payments"']
        incident: {group_by: [alertname, namespace, service], title: "{{ labels.pod }} crashes"}
        actions:
          - {type: log, message: "would restart {{ labels.pod }}"}

Action kinds live in `ACTION_MODELS`, keyed by the YAML `type`. Registering a model there is all
an action kind needs: validation and the JSON Schema pick it up at call time. Mark template
fields of an action model with `TemplateStr` so they are checked at load and pre-compiled.
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
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from remediator.durations import Duration, format_duration
from remediator.guards.spec import GuardsSpec
from remediator.incidents.priority import Priority
from remediator.rules.matcher import MatcherSyntaxError, parse_matcher
from remediator.rules.templating import TemplateError, compile_template

__all__ = [
    "ACTION_MODELS",
    "TEMPLATE",
    "ActionField",
    "EscalateSpec",
    "IncidentSpec",
    "LogAction",
    "Rule",
    "RuleFile",
    "TemplateStr",
    "VerifySpec",
    "action_model_for",
    "action_models",
    "rule_file_json_schema",
]

RULE_NAME_PATTERN: Final = r"^[A-Za-z0-9_.:-]+$"
RULE_NAME_MAX_LENGTH: Final = 200
LABEL_NAME_PATTERN: Final = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_MATCHER_SCHEMA_PATTERN: Final = r"^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|=|!=|!~)"


class _TemplateMarker:
    """Marks a string field as a Jinja2 template (see `TemplateStr`)."""

    def __repr__(self) -> str:
        return "TEMPLATE"


TEMPLATE: Final = _TemplateMarker()


def _error(kind: str, message: str) -> PydanticCustomError:
    # A message without context is used verbatim, so braces from templates stay as written.
    return PydanticCustomError(kind, message)


def check_template(source: str) -> str:
    """`source` unchanged if it compiles as a template; else a validation error naming why."""
    try:
        compile_template(source)
    except TemplateError as error:
        raise _error("template_syntax", f"invalid template: {error.reason}") from None
    return source


def _check_matcher(text: str) -> str:
    try:
        parse_matcher(text)
    except MatcherSyntaxError as error:
        raise _error("matcher_syntax", str(error)) from None
    return text


def _check_rule_name(name: str) -> str:
    if not re.fullmatch(RULE_NAME_PATTERN, name):
        raise _error(
            "rule_name",
            f"rule name {name!r} may contain only letters, digits and _ . : -",
        )
    if len(name) > RULE_NAME_MAX_LENGTH:
        raise _error("rule_name", f"rule name is longer than {RULE_NAME_MAX_LENGTH} characters")
    return name


def _check_label_name(name: str) -> str:
    if not re.fullmatch(LABEL_NAME_PATTERN, name):
        raise _error(
            "label_name",
            f"{name!r} is not a label name (letters, digits and _, not starting with a digit)",
        )
    return name


def _check_unique(names: list[str]) -> list[str]:
    seen = [name for index, name in enumerate(names) if name in names[:index]]
    if seen:
        raise _error("duplicate_label", f"group_by lists {seen[0]!r} more than once")
    return names


TemplateStr = Annotated[
    str,
    AfterValidator(check_template),
    TEMPLATE,
    WithJsonSchema(
        {
            "type": "string",
            "description": "Jinja2 template; sees labels, annotations, alert and incident",
            "examples": ["{{ labels.alertname }} on {{ labels.instance }}"],
        }
    ),
]
"""A string field holding a Jinja2 template: checked at load, pre-compiled by compiled.py."""

MatcherStr = Annotated[
    str,
    AfterValidator(_check_matcher),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _MATCHER_SCHEMA_PATTERN,
            "description": 'Alertmanager matcher: name="v", name!="v", name=~"re", name!~"re"',
            "examples": ['alertname="KubePodCrashLooping"', 'severity=~"critical|warning"'],
        }
    ),
]
LabelName = Annotated[
    str,
    AfterValidator(_check_label_name),
    WithJsonSchema({"type": "string", "pattern": LABEL_NAME_PATTERN}),
]
RuleName = Annotated[
    str,
    AfterValidator(_check_rule_name),
    WithJsonSchema(
        {"type": "string", "pattern": RULE_NAME_PATTERN, "maxLength": RULE_NAME_MAX_LENGTH}
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class LogAction(_Strict):
    """Write a line to remediator's log; changes nothing. Useful to try a rule safely."""

    type: Literal["log"]
    message: TemplateStr
    """What to log, e.g. "would restart {{ labels.pod }}"."""
    level: Literal["debug", "info", "warning", "error"] = "info"


ACTION_MODELS: dict[str, type[BaseModel]] = {"log": LogAction}
"""The core's own action models by YAML `type`; executor plugins add theirs (`action_models`)."""


def action_models() -> dict[str, type[BaseModel]]:
    """Every known action model by `type`: the core's and those of installed executor plugins."""
    from remediator.plugins import executor_plugins  # late: remediator.plugins imports this

    models = dict(ACTION_MODELS)
    for kind, plugin in executor_plugins().items():
        models.setdefault(kind, plugin.action_model)
    return models


def _validate_action(value: Any) -> BaseModel:
    """Dispatch on `type` to the registered model, so nested errors keep their field path."""
    models = action_models()
    if isinstance(value, BaseModel) and type(value) in models.values():
        return value
    known = ", ".join(sorted(models))
    if not isinstance(value, dict):
        raise _error(
            "action_type", f"an action must be a mapping with a `type`; known types: {known}"
        )
    model = action_model_for(value)
    if model is not None:
        return model.model_validate(value)
    kind = value.get("type")
    if kind is None:
        raise _error("action_type", f"an action needs a `type`; known types: {known}")
    detail = InitErrorDetails(
        type=_error("action_type", f"unknown action type {str(kind)!r}; known types: {known}"),
        loc=("type",),
        input=kind,
    )
    raise ValidationError.from_exception_data("action", [detail])


class ActionField:
    """Marks an action field: validated by `type` via ACTION_MODELS, schema of every kind."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate_action,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda action: action.model_dump(mode="json", by_alias=True)
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # Built at call time from ACTION_MODELS, so kinds registered later are included.
        models = action_models().items()
        choices = {kind: model.__pydantic_core_schema__ for kind, model in models}
        return handler(core_schema.tagged_union_schema(choices, discriminator="type"))


Action = Annotated[BaseModel, ActionField()]


def action_model_for(value: Any) -> type[BaseModel] | None:
    """The registered model for a raw action mapping, by its `type`; None if unknown."""
    kind = value.get("type") if isinstance(value, dict) else None
    return action_models().get(kind) if isinstance(kind, str) else None


class IncidentSpec(_Strict):
    """How alerts that match the rule become incidents."""

    group_by: Annotated[list[LabelName], AfterValidator(_check_unique)] | None = None
    """Alerts with equal values of these labels share one incident; omit for one per alert."""
    priority: Priority | None = None
    """Fixed priority; when omitted it comes from the alert's `severity` label."""
    title: TemplateStr | None = None
    """Incident title template, e.g. "{{ labels.alertname }} on {{ labels.instance }}"."""


def _check_promql(source: str) -> str:
    try:
        compile_template(source, "promql")
    except TemplateError as error:
        raise _error("template_syntax", f"invalid template: {error.reason}") from None
    if _QUOTED_PLACEHOLDER.search(source):
        raise _error(
            "promql_quoting",
            "remediator quotes every {{ … }} value as a PromQL string itself: write "
            'instance={{ labels.instance }}, not instance="{{ labels.instance }}"',
        )
    return source


_QUOTED_PLACEHOLDER: Final = re.compile(r"[\"'`]\s*\{\{|\}\}\s*[\"'`]")

PromQLStr = Annotated[
    str,
    Field(min_length=1),
    AfterValidator(_check_promql),
    WithJsonSchema(
        {
            "type": "string",
            "description": "PromQL returning series only while the fault lasts; each "
            "{{ … }} value is inserted as a quoted PromQL string",
            "examples": ["node_filesystem_avail_bytes{instance={{ labels.instance }}} < 1e9"],
        }
    ),
]


class VerifySpec(_Strict):
    """How remediator checks that the fault is really gone, after the last action.

    Either check passing resolves the incident as auto-remediated; when the window ends
    with neither, the incident is escalated.
    """

    resolved_within: Duration | None = None
    """The incident's alerts must all resolve within this time after the actions, e.g. 5m."""
    promql: PromQLStr | None = None
    """A PromQL expression that returns series only while the fault lasts (like an alert
    expression). Queried every `interval` until it returns none (verified) or `within` ends.
    Sees the incident's common labels: each {{ … }} value becomes a quoted PromQL string, so
    write `instance={{ labels.instance }}`. Needs `verifiers.promql.url` in the config."""
    within: Duration | None = None
    """How long the PromQL check may take to pass; default `resolved_within`, else 5m."""
    interval: Duration = timedelta(seconds=30)
    """How often the PromQL check runs (the first run is one interval after the actions)."""

    @model_validator(mode="after")
    def _promql_settings(self) -> Self:
        if self.promql is None:
            if self.within is not None or "interval" in self.model_fields_set:
                raise ValueError("within and interval apply only to a promql check")
            return self
        if self.interval < timedelta(seconds=1):
            raise ValueError("interval must be at least 1s")
        window = self.within or self.resolved_within
        if window is not None and self.interval > window:
            raise ValueError(
                f"interval ({format_duration(self.interval)}) is longer than the window "
                f"({format_duration(window)})"
            )
        return self


class EscalateSpec(_Strict):
    """Who hears about it when remediation fails or does not verify."""

    policy: str = Field(min_length=1)
    """Name of an escalation policy from the service configuration."""


class Rule(_Strict):
    """One rule: which alerts it matches and what to do about them."""

    name: RuleName
    """Unique across all rule files; letters, digits and _ . : -"""
    description: str | None = None
    match: list[MatcherStr] = Field(min_length=1)
    """Alertmanager matchers; all must hold, e.g. 'alertname="KubePodCrashLooping"'."""
    on: Literal["firing", "resolved"] = "firing"
    """Whether the rule handles firing or resolved notifications."""
    incident: IncidentSpec = Field(default_factory=IncidentSpec)
    actions: list[Action] = Field(default_factory=list)
    """Run in order; `type` selects the kind."""
    verify: VerifySpec | None = None
    escalate: EscalateSpec | None = None
    runbook: str | None = None
    """Text or link shown with the incident."""
    continue_: bool = Field(False, alias="continue")
    """Also try later rules after this one matched (as in Alertmanager routes)."""
    dry_run: bool | None = None
    """Record what the actions would do instead of running them; unset: the service default."""
    per: Literal["alert", "incident"] = "alert"
    """One remediation job per matched firing alert, or one for the incident's first alert."""
    guards: GuardsSpec | None = None
    """Safety guards for this rule's remediations; unset keys take the config's defaults."""


class RuleFile(_Strict):
    """A remediator rule file."""

    rules: list[Rule]


def rule_file_json_schema() -> dict[str, Any]:
    """JSON Schema of a rule file (for `remediator schema` and editors), with every action kind."""
    schema = RuleFile.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
