"""Guard decisions in rule unit tests (`remediator test`): a given state, no database.

A test states what the guards know (earlier remediations, a pause, an open breaker, flaps)
and expects a verdict. The state becomes the same `Snapshot` the store would build, so the
test exercises the very decision the service makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from remediator.guards.breaker import BreakerPosition, BreakerState
from remediator.guards.compiled import Guards, defaults_of, effective
from remediator.guards.decide import Ask, Outcome, Pause, Snapshot, decide
from remediator.guards.gate import AlertRef, ask_for, template_failed
from remediator.guards.spec import GuardDefaults
from remediator.rules.templating import TemplateError

if TYPE_CHECKING:
    from remediator.rules.compiled import CompiledRule
    from remediator.rules.testing import GuardState

# The instant a test alert's remediation is decided at.
TEST_NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def decide_for_test(
    rule: CompiledRule,
    defaults: GuardDefaults,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    fingerprint: str,
    priority: str,
    state: GuardState,
) -> Outcome:
    """The guards' decision on `rule` remediating this alert, given `state`."""
    guards = effective(rule.guards, defaults_of(defaults))
    alert = AlertRef(rule.name, labels, annotations, fingerprint, 1)
    try:
        ask = ask_for(guards, alert, priority, approved=state.approved)
    except TemplateError as error:
        return template_failed(error)  # as the service decides
    return decide(guards, ask, _snapshot(rule.name, guards, ask, state))


def _snapshot(rule: str, guards: Guards, ask: Ask, state: GuardState) -> Snapshot:
    now = TEST_NOW
    running: dict[str, int] = {}
    last_ended: dict[str, datetime] = {}
    rate_used = 0
    in_group: set[str] = set()
    for past in state.remediations:
        started = now - past.ago
        if past.running:
            running[past.target] = running.get(past.target, 0) + 1
        if (past.rule or rule) != rule:
            continue
        if not past.running:
            ended = now - (past.ended_ago if past.ended_ago is not None else past.ago)
            last_ended[past.target] = max(ended, last_ended.get(past.target, ended))
        rate = guards.rate_limit
        if rate is not None and past.rate_key == ask.rate_key and started > now - rate.per:
            rate_used += 1
        blast = guards.blast_radius
        if blast is not None and past.group == ask.group and started > now - blast.spec.window:
            in_group.add(past.target)
    return Snapshot(
        now=now,
        pause=None if state.paused is None else Pause("a test", state.paused, now),
        window=state.maintenance_window,
        flaps=state.flaps,
        breaker=_breaker(state, now),
        running=running,
        last_ended=last_ended,
        rate_used=rate_used,
        remediated_in_group=frozenset(in_group),
        alerting_in_group=state.alerting_in_group,
    )


def _breaker(state: GuardState, now: datetime) -> BreakerState:
    given = state.breaker
    position = BreakerPosition(given.state)
    if position is BreakerPosition.closed:
        return BreakerState(position, given.failures)
    until = now + given.open_for
    if position is BreakerPosition.open:
        return BreakerState(position, given.failures, open_until=until)
    return BreakerState(position, given.failures, trial_until=until)
