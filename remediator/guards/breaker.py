"""The circuit breaker of one rule, as pure transitions over its stored state.

closed ──K failures in a row──▶ open ──cool_off passes──▶ half_open (one trial runs)
   ▲                                ▲                          │
   └──────── a success ─────────────┴──── the trial fails ─────┘

A trial that never reports (a human took the incident over) does not wedge the rule: after
another `cool_off` the next remediation is let through as a new trial.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from remediator.durations import format_duration
from remediator.guards.spec import CircuitBreaker


class BreakerPosition(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerState:
    """A rule's breaker: its position, failures in a row, and its deadlines."""

    position: BreakerPosition = BreakerPosition.closed
    failures: int = 0
    open_until: datetime | None = None
    trial_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a remediation may run, the state if it does, and why."""

    allowed: bool
    state: BreakerState
    reason: str


def admit(state: BreakerState, config: CircuitBreaker, now: datetime) -> Admission:
    """May a remediation of the rule run now? `state` is what it becomes if it does."""
    if state.position is BreakerPosition.closed:
        return Admission(True, state, f"closed ({state.failures} failure(s) in a row)")
    if state.position is BreakerPosition.open and state.open_until and now < state.open_until:
        return Admission(
            False,
            state,
            f"open after {state.failures} failed or unverified remediations in a row; "
            f"automation of this rule resumes with a trial at {state.open_until.isoformat()} "
            "(or close the breaker: remediator guards close-breaker)",
        )
    if (
        state.position is BreakerPosition.half_open
        and state.trial_until
        and now < state.trial_until
    ):
        return Admission(
            False, state, "half-open: a trial remediation is running; its outcome decides"
        )
    trial = replace(state, position=BreakerPosition.half_open, trial_until=now + config.cool_off)
    return Admission(
        True,
        trial,
        f"half-open: this remediation is the trial after {format_duration(config.cool_off)}",
    )


def record(
    state: BreakerState, config: CircuitBreaker | None, succeeded: bool, now: datetime
) -> BreakerState:
    """The state after a remediation's outcome; without a breaker configured only counts."""
    if succeeded:
        return BreakerState()
    failures = state.failures + 1
    trial_failed = state.position is BreakerPosition.half_open
    if config is not None and (trial_failed or failures >= config.failures):
        return BreakerState(BreakerPosition.open, failures, now + config.cool_off, None)
    return replace(state, failures=failures)
