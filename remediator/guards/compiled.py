"""Guards as the runner uses them: a rule's settings merged over the service defaults.

A rule's `guards:` is compiled once at load (templates pre-compiled); `effective` merges it
over the config defaults at decision time, so a config change and a rule change each need
only their own reload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from remediator.guards.spec import (
    Approval,
    BlastRadius,
    CircuitBreaker,
    Flapping,
    GuardDefaults,
    GuardsSpec,
    RateLimit,
)
from remediator.rules.templating import Template, compile_template


@dataclass(frozen=True, slots=True)
class CompiledRateLimit:
    limit: int
    per: timedelta
    key: Template | None


@dataclass(frozen=True, slots=True)
class CompiledBlastRadius:
    spec: BlastRadius
    group: Template | None

    def max_remediated(self) -> int | None:
        """Distinct targets of a group that may be remediated per window (the tighter limit)."""
        limits = [self.spec.max_targets] if self.spec.max_targets is not None else []
        if self.spec.max_percent is not None and self.spec.group_size is not None:
            limits.append(max(1, int(self.spec.group_size * self.spec.max_percent / 100)))
        return min(limits) if limits else None

    def max_alerting(self) -> int | None:
        """Alerting targets of a group above which automation refuses (the tighter limit)."""
        limits = [self.spec.max_alerting] if self.spec.max_alerting is not None else []
        if self.spec.max_alerting_percent is not None and self.spec.group_size is not None:
            limits.append(int(self.spec.group_size * self.spec.max_alerting_percent / 100))
        return min(limits) if limits else None


Unset = Literal[False] | None


@dataclass(frozen=True, slots=True)
class CompiledGuards:
    """A rule's own guard settings; None = the service default, False = switched off."""

    target: Template | None = None
    max_targets: int | None = None
    concurrency: int | None = None
    cooldown: timedelta | None = None
    rate_limit: CompiledRateLimit | Unset = None
    blast_radius: CompiledBlastRadius | Unset = None
    circuit_breaker: CircuitBreaker | Unset = None
    flapping: Flapping | Unset = None
    approval: Approval | Unset = None


@dataclass(frozen=True, slots=True)
class Guards:
    """The guards in force for one rule: its own settings over the service defaults."""

    target: Template | None
    max_targets: int
    concurrency: int
    cooldown: timedelta
    rate_limit: CompiledRateLimit | None
    blast_radius: CompiledBlastRadius | None
    circuit_breaker: CircuitBreaker | None
    flapping: Flapping | None
    approval: Approval | None


def compile_guards(spec: GuardsSpec | None) -> CompiledGuards:
    """Pre-compile a rule's `guards:` (an absent mapping sets nothing)."""
    if spec is None:
        return CompiledGuards()
    return CompiledGuards(
        target=None if spec.target is None else compile_template(spec.target),
        max_targets=spec.max_targets,
        concurrency=spec.concurrency,
        cooldown=spec.cooldown,
        rate_limit=_rate(spec.rate_limit),
        blast_radius=_blast(spec.blast_radius),
        circuit_breaker=spec.circuit_breaker,
        flapping=spec.flapping,
        approval=spec.approval,
    )


def _rate(spec: RateLimit | Literal[False] | None) -> CompiledRateLimit | Unset:
    if spec is None or spec is False:
        return spec
    key = None if spec.key is None else compile_template(spec.key)
    return CompiledRateLimit(spec.limit, spec.per, key)


def _blast(spec: BlastRadius | Literal[False] | None) -> CompiledBlastRadius | Unset:
    if spec is None or spec is False:
        return spec
    return CompiledBlastRadius(spec, None if spec.group is None else compile_template(spec.group))


def defaults_of(config: GuardDefaults) -> Guards:
    """The service defaults (the config's `guards:`) as the guards of a rule that sets none."""
    return Guards(
        target=None,
        max_targets=config.max_targets,
        concurrency=config.concurrency,
        cooldown=config.cooldown,
        rate_limit=_rate(config.rate_limit) or None,
        blast_radius=_blast(config.blast_radius) or None,
        circuit_breaker=config.circuit_breaker,
        flapping=config.flapping,
        approval=config.approval,
    )


def effective(own: CompiledGuards | None, base: Guards) -> Guards:
    """The guards in force: each of the rule's settings, else the default in `base`."""
    if own is None:
        return base
    return Guards(
        target=own.target,
        max_targets=_pick(own.max_targets, base.max_targets),
        concurrency=_pick(own.concurrency, base.concurrency),
        cooldown=_pick(own.cooldown, base.cooldown),
        rate_limit=_on(own.rate_limit, base.rate_limit),
        blast_radius=_on(own.blast_radius, base.blast_radius),
        circuit_breaker=_on(own.circuit_breaker, base.circuit_breaker),
        flapping=_on(own.flapping, base.flapping),
        approval=_on(own.approval, base.approval),
    )


def _pick(own: Any, default: Any) -> Any:
    return default if own is None else own


def _on(own: Any, default: Any) -> Any:
    """A guard that can be switched off: False = off, None = the default (maybe off too)."""
    if own is False:
        return None
    chosen = default if own is None else own
    return None if chosen is False else chosen


def describe(guards: Guards) -> Mapping[str, Any]:
    """The guards in force as plain JSON-ready data (for the API and the CLI)."""
    rate = guards.rate_limit
    blast = guards.blast_radius
    return {
        "target": guards.target.source if guards.target else None,
        "max_targets": guards.max_targets,
        "concurrency": guards.concurrency,
        "cooldown_seconds": guards.cooldown.total_seconds(),
        "rate_limit": None
        if rate is None
        else {
            "limit": rate.limit,
            "per_seconds": rate.per.total_seconds(),
            "key": rate.key.source if rate.key else None,
        },
        "blast_radius": None if blast is None else blast.spec.model_dump(mode="json"),
        "circuit_breaker": None
        if guards.circuit_breaker is None
        else guards.circuit_breaker.model_dump(mode="json"),
        "flapping": None if guards.flapping is None else guards.flapping.model_dump(mode="json"),
        "approval": None if guards.approval is None else guards.approval.model_dump(mode="json"),
    }
