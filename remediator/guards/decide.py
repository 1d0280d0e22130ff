"""The guard decision for one remediation, as a pure function of what the store knows.

`decide` checks the guards in a fixed order and stops at the first that blocks (or, for an
approval, asks to wait): the kill switch, maintenance windows, the target set, flapping,
per-target concurrency and cooldown, the rate limit, the blast radius, the circuit breaker,
and last the approval, so a human is asked only about a remediation that could run. Every
guard checked gives a `Decision`; they go on the timeline and into
`remediator_guard_decisions_total`.

Nothing here reads a clock or a database: the store builds a `Snapshot`, rule tests build one
by hand, and property tests compare this logic with a reference model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from remediator.durations import format_duration
from remediator.guards.breaker import BreakerState, admit
from remediator.guards.compiled import Guards


class Verdict(StrEnum):
    allowed = "allowed"
    blocked = "blocked"
    pending = "pending"  # waits for a human's approval


@dataclass(frozen=True, slots=True)
class Decision:
    """One guard's verdict on one remediation, and why."""

    guard: str
    verdict: Verdict
    reason: str


@dataclass(frozen=True, slots=True)
class Ask:
    """The remediation asking to run: its rule, incident priority and rendered keys."""

    rule: str
    priority: str
    targets: tuple[str, ...]
    rate_key: str = ""
    group: str = ""
    approved: bool = False


@dataclass(frozen=True, slots=True)
class Pause:
    """The global kill switch, while on."""

    by: str
    reason: str
    since: datetime
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the store knows that the guards need, read in the deciding transaction."""

    now: datetime
    pause: Pause | None = None
    window: str | None = None  # the active maintenance window that covers the alert
    flaps: int = 0  # resolutions of the alert within the flapping window
    breaker: BreakerState = field(default_factory=BreakerState)
    running: Mapping[str, int] = field(default_factory=dict)  # target → in flight (any rule)
    last_ended: Mapping[str, datetime] = field(default_factory=dict)  # target → this rule's
    rate_used: int = 0  # this rule's remediations for the rate key within the window
    remediated_in_group: frozenset[str] = frozenset()  # targets done within the blast window
    alerting_in_group: int = 0  # targets of the group with a firing alert of this rule


@dataclass(frozen=True, slots=True)
class Outcome:
    """All decisions made, the final verdict, and the breaker state if the remediation runs."""

    decisions: tuple[Decision, ...]
    breaker: BreakerState

    @property
    def verdict(self) -> Verdict:
        return self.decisions[-1].verdict if self.decisions else Verdict.allowed

    @property
    def deciding(self) -> Decision | None:
        """The decision that blocked or holds the remediation; None when it may run."""
        last = self.decisions[-1] if self.decisions else None
        return last if last is not None and last.verdict is not Verdict.allowed else None


def decide(guards: Guards, ask: Ask, snap: Snapshot) -> Outcome:
    """Check every guard in order; the first that does not allow ends the checks."""
    made: list[Decision] = []
    breaker = snap.breaker
    for check in _CHECKS:
        decision = check(guards, ask, snap)
        if decision is None:
            continue
        made.append(decision)
        if decision.verdict is not Verdict.allowed:
            return Outcome(tuple(made), snap.breaker)
    if guards.circuit_breaker is not None:
        admission = admit(snap.breaker, guards.circuit_breaker, snap.now)
        verdict = Verdict.allowed if admission.allowed else Verdict.blocked
        made.append(Decision("circuit_breaker", verdict, admission.reason))
        if not admission.allowed:
            return Outcome(tuple(made), snap.breaker)
        breaker = admission.state
    approval = _approval(guards, ask)
    if approval is not None:
        made.append(approval)
        if approval.verdict is Verdict.pending:
            return Outcome(tuple(made), snap.breaker)  # the trial waits for the human too
    return Outcome(tuple(made), breaker)


def _pause(guards: Guards, ask: Ask, snap: Snapshot) -> Decision | None:
    if snap.pause is None:
        return None
    until = f" until {snap.pause.until.isoformat()}" if snap.pause.until else ""
    return Decision(
        "pause",
        Verdict.blocked,
        f"automation is paused by {snap.pause.by}{until}: {snap.pause.reason}",
    )


def _window(guards: Guards, ask: Ask, snap: Snapshot) -> Decision | None:
    if snap.window is None:
        return None
    return Decision(
        "maintenance_window",
        Verdict.blocked,
        f"maintenance window {snap.window} is active: automation does not act",
    )


def _targets(guards: Guards, ask: Ask, snap: Snapshot) -> Decision:
    if not ask.targets:
        return Decision(
            "target",
            Verdict.blocked,
            "the target rendered empty: refusing rather than acting on an unknown or "
            "unbounded set (check the rule's guards.target and the alert's labels)",
        )
    if len(ask.targets) > guards.max_targets:
        return Decision(
            "target",
            Verdict.blocked,
            f"{len(ask.targets)} targets is more than max_targets {guards.max_targets}: "
            "an unexpectedly large target set is refused",
        )
    return Decision("target", Verdict.allowed, f"target {', '.join(ask.targets)}")


def _flapping(guards: Guards, ask: Ask, snap: Snapshot) -> Decision | None:
    flapping = guards.flapping
    if flapping is None:
        return None
    within = format_duration(flapping.window)
    if snap.flaps > flapping.max_flaps:
        return Decision(
            "flapping",
            Verdict.blocked,
            f"the alert is flapping: it resolved {snap.flaps} times within {within} "
            f"(more than {flapping.max_flaps}); escalated instead of chased",
        )
    return Decision("flapping", Verdict.allowed, f"{snap.flaps} resolution(s) within {within}")


def _concurrency(guards: Guards, ask: Ask, snap: Snapshot) -> Decision:
    for target in ask.targets:
        busy = snap.running.get(target, 0)
        if busy >= guards.concurrency:
            return Decision(
                "concurrency",
                Verdict.blocked,
                f"target {target} already has {busy} remediation(s) running "
                f"(concurrency {guards.concurrency})",
            )
    return Decision("concurrency", Verdict.allowed, f"at most {guards.concurrency} per target")


def _cooldown(guards: Guards, ask: Ask, snap: Snapshot) -> Decision | None:
    if not guards.cooldown:
        return None
    for target in ask.targets:
        ended = snap.last_ended.get(target)
        if ended is not None and snap.now < ended + guards.cooldown:
            return Decision(
                "cooldown",
                Verdict.blocked,
                f"target {target} was remediated by this rule at {ended.isoformat()}; "
                f"cooldown {format_duration(guards.cooldown)} lasts until "
                f"{(ended + guards.cooldown).isoformat()}",
            )
    return Decision("cooldown", Verdict.allowed, f"none within {format_duration(guards.cooldown)}")


def _rate_limit(guards: Guards, ask: Ask, snap: Snapshot) -> Decision | None:
    rate = guards.rate_limit
    if rate is None:
        return None
    scope = f" for {ask.rate_key}" if ask.rate_key else ""
    used = f"{snap.rate_used} of {rate.limit} per {format_duration(rate.per)}{scope}"
    if snap.rate_used >= rate.limit:
        return Decision("rate_limit", Verdict.blocked, f"rate limit reached: {used} used")
    return Decision("rate_limit", Verdict.allowed, f"{used} used")


def _blast_radius(guards: Guards, ask: Ask, snap: Snapshot) -> Decision | None:
    blast = guards.blast_radius
    if blast is None:
        return None
    group = f"group {ask.group}" if ask.group else "the rule's targets"
    most_alerting = blast.max_alerting()
    if most_alerting is not None and snap.alerting_in_group > most_alerting:
        return Decision(
            "blast_radius",
            Verdict.blocked,
            f"{snap.alerting_in_group} targets of {group} are alerting (more than "
            f"{most_alerting}): too much is broken for automation to be safe",
        )
    most = blast.max_remediated()
    new = [target for target in ask.targets if target not in snap.remediated_in_group]
    done = len(snap.remediated_in_group)
    within = format_duration(blast.spec.window)
    if most is not None and done + len(new) > most:
        return Decision(
            "blast_radius",
            Verdict.blocked,
            f"{done} distinct target(s) of {group} remediated within {within}; "
            f"{len(new)} more would pass the limit of {most}",
        )
    return Decision(
        "blast_radius", Verdict.allowed, f"{done} target(s) of {group} remediated within {within}"
    )


def _approval(guards: Guards, ask: Ask) -> Decision | None:
    approval = guards.approval
    if approval is None or not approval.needed_for(ask.priority):
        return None
    if ask.approved:
        return Decision("approval", Verdict.allowed, "approved")
    return Decision(
        "approval",
        Verdict.pending,
        f"waits up to {format_duration(approval.timeout)} for an operator's approval",
    )


_CHECKS = (
    _pause,
    _window,
    _targets,
    _flapping,
    _concurrency,
    _cooldown,
    _rate_limit,
    _blast_radius,
)


def summary(outcome: Outcome) -> str:
    """One line for the timeline: the deciding guard's reason, or everything that allowed."""
    deciding = outcome.deciding
    if deciding is not None:
        return f"{deciding.guard}: {deciding.reason}"
    return "; ".join(f"{d.guard}: {d.reason}" for d in outcome.decisions)
