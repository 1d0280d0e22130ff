"""Rules as the hot path uses them: frozen, slotted, pre-parsed, pre-compiled. No pydantic here.

`compile_rule` turns a validated `model.Rule` into a `CompiledRule`; a `RuleSet` is the ordered,
immutable result of loading all rule files, swapped atomically on reload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType, NoneType, UnionType
from typing import TYPE_CHECKING, Annotated, Any, Final, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from remediator.incidents.priority import Priority
from remediator.rules.matcher import Matcher, parse_matcher
from remediator.rules.model import TEMPLATE, Rule
from remediator.rules.templating import Template, compile_template

if TYPE_CHECKING:  # remediator.guards imports the rules package: compiled lazily below
    from remediator.guards.compiled import CompiledGuards

__all__ = [
    "MAX_INCIDENT_KEY_LENGTH",
    "CompiledAction",
    "CompiledRule",
    "CompiledVerify",
    "RuleSet",
    "compile_rule",
]

MAX_INCIDENT_KEY_LENGTH: Final = 512


@dataclass(frozen=True, slots=True)
class CompiledAction:
    """One action of a rule: its `type` and its validated parameters.

    `params` is the action model's dump (field names, `type` included), read-only (mappings
    are `MappingProxyType`, lists are tuples), with every template field already compiled
    into a `Template`.
    """

    type: str
    params: Mapping[str, Any] = field(hash=False)  # read-only but unhashable; type decides


@dataclass(frozen=True, slots=True)
class CompiledVerify:
    """A rule's verification: its alerts resolved within a window, or a PromQL check."""

    resolved_within: timedelta | None = None
    promql: Template | None = None
    within: timedelta | None = None
    interval: timedelta = timedelta(seconds=30)

    @property
    def window(self) -> timedelta | None:
        """How long verification may take; None: the service default. 0s is a real window:
        escalate unless every alert resolved during the actions ("act, then hand over")."""
        return self.within if self.within is not None else self.resolved_within


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready for matching; `source` is "file:line" of the rule in its file."""

    name: str
    matchers: tuple[Matcher, ...]
    on: str
    group_by: tuple[str, ...] | None
    priority: Priority | None
    title: Template | None
    actions: tuple[CompiledAction, ...]
    runbook: str | None
    continue_: bool
    dry_run: bool | None
    escalate_policy: str | None
    source: str
    per: str = "alert"
    verify: CompiledVerify | None = None
    guards: CompiledGuards | None = None
    """The rule's own guard settings (None: it sets none; the config defaults apply)."""

    @property
    def remediates(self) -> bool:
        """Whether matched alerts become remediation jobs (any action other than `log`)."""
        return any(action.type != "log" for action in self.actions)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher holds for `labels` (ignores `on`; see `RuleSet.match`)."""
        return all(matcher.matches(labels) for matcher in self.matchers)

    def incident_key(self, fingerprint: str, labels: Mapping[str, str]) -> str:
        """The key under which alerts of this rule share one incident.

        `name/fingerprint=<fp>` without group_by, else `name/a="1",b="2"` in group_by order
        with values escaped like matcher values, so distinct label values never give equal
        keys. Keys longer than 512 characters become `name/sha256:<hex of the full key>`.
        """
        if self.group_by is None:
            key = f"{self.name}/fingerprint={fingerprint}"
        else:
            pairs = (f'{label}="{_escape(labels.get(label, ""))}"' for label in self.group_by)
            key = f"{self.name}/{','.join(pairs)}"
        if len(key) <= MAX_INCIDENT_KEY_LENGTH:
            return key
        return f"{self.name}/sha256:{hashlib.sha256(key.encode()).hexdigest()}"

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that identify the incident: group_by ones (missing as ""), else all."""
        if self.group_by is None:
            return dict(labels)
        return {label: labels.get(label, "") for label in self.group_by}


@dataclass(frozen=True, slots=True)
class RuleSet:
    """All loaded rules in file order, and the files they came from."""

    rules: tuple[CompiledRule, ...]
    files: tuple[str, ...]
    version: str = "none"  # see rules.loader.rules_version

    def match(self, labels: Mapping[str, str], status: str) -> list[CompiledRule]:
        """Rules for an alert in `status` ("firing"/"resolved"), as Alertmanager routes do.

        Rules are tried in file order; the first match stops the search unless that rule has
        `continue: true`.
        """
        matched: list[CompiledRule] = []
        for rule in self.rules:
            if rule.on == status and rule.matches(labels):
                matched.append(rule)
                if not rule.continue_:
                    break
        return matched

    @staticmethod
    def empty() -> RuleSet:
        """A rule set that matches nothing (before the first successful load)."""
        return RuleSet(rules=(), files=())


def compile_rule(rule: Rule, source: str) -> CompiledRule:
    """Build the hot-path form of a validated rule; `source` is its "file:line"."""
    from remediator.guards.compiled import compile_guards

    return CompiledRule(
        name=rule.name,
        matchers=tuple(parse_matcher(text) for text in rule.match),
        on=rule.on,
        group_by=None if rule.incident.group_by is None else tuple(rule.incident.group_by),
        priority=rule.incident.priority,
        title=None if rule.incident.title is None else compile_template(rule.incident.title),
        actions=tuple(compile_action(action) for action in rule.actions),
        runbook=rule.runbook,
        continue_=rule.continue_,
        dry_run=rule.dry_run,
        escalate_policy=rule.escalate.policy if rule.escalate else None,
        source=source,
        per=rule.per,
        verify=_compile_verify(rule),
        guards=None if rule.guards is None else compile_guards(rule.guards),
    )


def _compile_verify(rule: Rule) -> CompiledVerify | None:
    spec = rule.verify
    if spec is None:
        return None
    return CompiledVerify(
        resolved_within=spec.resolved_within,
        promql=None if spec.promql is None else compile_template(spec.promql, "promql"),
        within=spec.within,
        interval=spec.interval,
    )


def compile_action(action: BaseModel) -> CompiledAction:
    """Freeze a validated action model, compiling the fields marked as templates."""
    params = _freeze_model(action)
    return CompiledAction(type=str(params["type"]), params=params)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _freeze_model(model: BaseModel) -> Mapping[str, Any]:
    fields = type(model).model_fields
    return MappingProxyType(
        {name: _freeze_field(info, getattr(model, name)) for name, info in fields.items()}
    )


def _freeze_field(info: FieldInfo, value: Any) -> Any:
    # pydantic moves the metadata of a top-level Annotated into FieldInfo.metadata.
    if any(item is TEMPLATE for item in info.metadata) and isinstance(value, str):
        return compile_template(value)
    return _freeze(info.annotation, value)


def _freeze(annotation: Any, value: Any) -> Any:
    """Walk `value` alongside its type: templates compiled, containers made read-only."""
    if isinstance(value, BaseModel):
        return _freeze_model(value)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        if any(item is TEMPLATE for item in args[1:]) and isinstance(value, str):
            return compile_template(value)
        return _freeze(args[0], value)
    if origin in (Union, UnionType):
        options = [arg for arg in args if arg is not NoneType]
        return _freeze(options[0] if len(options) == 1 else Any, value)
    if isinstance(value, list | tuple):
        item_type = args[0] if args else Any
        return tuple(_freeze(item_type, item) for item in value)
    if isinstance(value, dict):
        value_type = args[1] if len(args) == 2 else Any
        return MappingProxyType({key: _freeze(value_type, item) for key, item in value.items()})
    return value
