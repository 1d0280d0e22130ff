"""The incident state machine: which state may follow which, and nothing else."""

from __future__ import annotations

from enum import StrEnum

from remediator.errors import InvalidTransitionError


class IncidentState(StrEnum):
    open = "open"
    remediating = "remediating"
    verifying = "verifying"
    escalated = "escalated"
    acknowledged = "acknowledged"
    resolved = "resolved"


_S = IncidentState
ALLOWED: dict[IncidentState, frozenset[IncidentState]] = {
    _S.open: frozenset({_S.remediating, _S.escalated, _S.acknowledged, _S.resolved}),
    _S.remediating: frozenset({_S.verifying, _S.escalated, _S.acknowledged, _S.resolved}),
    _S.verifying: frozenset({_S.resolved, _S.escalated, _S.acknowledged, _S.remediating}),
    _S.escalated: frozenset({_S.acknowledged, _S.resolved}),
    _S.acknowledged: frozenset({_S.resolved}),
    # A resolved incident stays resolved; a recurrence opens a new, linked incident.
    _S.resolved: frozenset(),
}


def check_transition(incident_id: int, current: str, target: IncidentState) -> None:
    """Raise InvalidTransitionError unless `current → target` is allowed."""
    if target not in ALLOWED[IncidentState(current)]:
        raise InvalidTransitionError(incident_id, current, target.value)
