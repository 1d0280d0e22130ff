"""Guards at the door of every remediation: decide, record, count.

The runner calls `GuardGate.decide` in the transaction that claims jobs, after taking the
guard lock (`remediator.store.guards.lock`), so replicas decide one at a time over the same
rows. An allowed remediation is recorded with its targets at once, so the next decision
already counts it. The runner turns the verdicts into job and incident states; this module
only decides and records, and `settle` feeds outcomes back into the circuit breaker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from remediator.config import Config
from remediator.guards import breaker as breakers
from remediator.guards.breaker import BreakerState
from remediator.guards.compiled import Guards, defaults_of, effective
from remediator.guards.decide import Ask, Decision, Outcome, Snapshot, Verdict, decide, summary
from remediator.guards.windows import active_window
from remediator.incidents.timeline import Actor, TimelineEntry
from remediator.metrics import Metrics
from remediator.rules import CompiledRule, RuleSet, TemplateError, render_context
from remediator.store import guards as store


@dataclass(frozen=True, slots=True)
class Verdicts:
    """The guards' answer for one claimed job."""

    job: Any
    outcome: Outcome
    entry: TimelineEntry

    @property
    def verdict(self) -> Verdict:
        return self.outcome.verdict

    @property
    def reason(self) -> str:
        return summary(self.outcome)


class GuardGate:
    """Decides whether claimed jobs may run; records what the guards let through."""

    def __init__(self, config: Config, rules: Callable[[], RuleSet], metrics: Metrics) -> None:
        self._config = config.guards
        self._base = defaults_of(config.guards)
        self._rules = rules
        self._metrics = metrics

    def guards_of(self, rule: CompiledRule) -> Guards:
        """The guards in force for `rule`: its own over the config defaults."""
        return effective(rule.guards, self._base)

    def decide(self, conn: Connection, job: Any, priority: str, now: datetime) -> Verdicts:
        """Decide for one job (the caller holds the guard lock) and record the decision."""
        rule = next((r for r in self._rules().rules if r.name == job.rule), None)
        guards = self._base if rule is None else self.guards_of(rule)
        try:
            ask = self._ask(job, guards, priority)
        except TemplateError as exc:
            return self._record(job, template_failed(exc), now)
        outcome = decide(guards, ask, self._snapshot(conn, job, guards, ask, now))
        if outcome.verdict is Verdict.allowed:
            self._begin(conn, job, ask, guards, outcome, now)
        return self._record(job, outcome, now)

    def _ask(self, job: Any, guards: Guards, priority: str) -> Ask:
        return ask_for(
            guards,
            AlertRef(job.rule, job.labels, job.annotations, job.fingerprint, job.incident_id),
            priority,
            approved=job.approved_at is not None,
        )

    def _snapshot(
        self, conn: Connection, job: Any, guards: Guards, ask: Ask, now: datetime
    ) -> Snapshot:
        window = active_window(self._config.maintenance_windows, now, job.labels)
        flapping = guards.flapping
        rate = guards.rate_limit
        blast = guards.blast_radius
        return Snapshot(
            now=now,
            pause=store.active_pause(conn, now),
            window=None if window is None else window.name,
            flaps=0
            if flapping is None
            else store.resolutions_since(conn, job.fingerprint, now - flapping.window),
            breaker=store.breaker(conn, job.rule),
            running=store.running_on(conn, ask.targets) if ask.targets else {},
            last_ended=store.last_ended(conn, job.rule, ask.targets) if guards.cooldown else {},
            rate_used=0
            if rate is None
            else store.rate_used(conn, job.rule, ask.rate_key, now - rate.per),
            remediated_in_group=frozenset()
            if blast is None
            else store.remediated_in_group(conn, job.rule, ask.group, now - blast.spec.window),
            alerting_in_group=0
            if blast is None or blast.max_alerting() is None
            else self._alerting(conn, job.rule, guards, ask.group),
        )

    def _alerting(self, conn: Connection, rule: str, guards: Guards, group: str) -> int:
        """Distinct targets of `group` with a firing alert of `rule`, each named as its own
        remediation would name it."""
        seen: set[str] = set()
        for row in store.firing_alerts(conn, rule):
            alert = AlertRef(rule, row.labels, row.annotations, row.fingerprint, row.incident_id)
            try:
                ask = ask_for(guards, alert, "", approved=False)
            except TemplateError:
                continue  # such an alert's own decision reports the template error
            if ask.group == group:
                seen.update(ask.targets)
        return len(seen)

    def _begin(
        self, conn: Connection, job: Any, ask: Ask, guards: Guards, outcome: Outcome, now: datetime
    ) -> None:
        store.begin(
            conn,
            job_id=job.id,
            incident_id=job.incident_id,
            rule=job.rule,
            rate_key=ask.rate_key,
            group=ask.group,
            targets=ask.targets,
            now=now,
        )
        if guards.circuit_breaker is not None and outcome.breaker != store.breaker(conn, job.rule):
            store.save_breaker(conn, job.rule, outcome.breaker, "remediator", now)

    def _record(self, job: Any, outcome: Outcome, now: datetime) -> Verdicts:
        for decision in outcome.decisions:
            self._metrics.guard_decisions.labels(
                decision.guard, job.rule, decision.verdict.value
            ).inc()
        verdict = outcome.verdict
        text = {
            Verdict.allowed: f"guards allow job {job.id}: {summary(outcome)}",
            Verdict.blocked: f"guards block job {job.id}: {summary(outcome)}",
            Verdict.pending: f"job {job.id} needs approval: {summary(outcome)}",
        }[verdict]
        entry = TimelineEntry(
            job.incident_id,
            now,
            Actor.system(),
            "guard_decision",
            text,
            data={
                "job_id": job.id,
                "verdict": verdict.value,
                "decisions": [
                    {"guard": d.guard, "verdict": d.verdict.value, "reason": d.reason}
                    for d in outcome.decisions
                ],
            },
        )
        return Verdicts(job, outcome, entry)

    def settle(
        self, conn: Connection, incident_id: int, succeeded: bool, now: datetime
    ) -> list[TimelineEntry]:
        """An incident's remediation ended well (verified) or badly: feed the breakers."""
        if succeeded:
            record_success(conn, incident_id, now)
            return []
        notes = []
        for rule_name in store.settle(conn, incident_id, store.FAILURE):
            rule = next((r for r in self._rules().rules if r.name == rule_name), None)
            config = (self.guards_of(rule) if rule else self._base).circuit_breaker
            before = store.breaker(conn, rule_name, for_update=True)
            after = breakers.record(before, config, False, now)
            store.save_breaker(conn, rule_name, after, "remediator", now)
            opened = after.position is breakers.BreakerPosition.open and after != before
            if opened and after.open_until is not None:
                self._metrics.breaker_opened.labels(rule_name).inc()
                notes.append(
                    TimelineEntry(
                        incident_id,
                        now,
                        Actor.system(),
                        "breaker_opened",
                        f"circuit breaker of rule {rule_name} opened after {after.failures} "
                        "failed or unverified remediation(s) in a row: its automation stops "
                        f"until {after.open_until.isoformat()}, new incidents escalate",
                    )
                )
        return notes


def template_failed(error: TemplateError) -> Outcome:
    """The decision when a guard template fails on the alert: blocked, never guessed."""
    reason = f"a guard template failed ({error}); refusing to guess the target"
    return Outcome((Decision("target", Verdict.blocked, reason),), BreakerState())


@dataclass(frozen=True, slots=True)
class AlertRef:
    """The alert a remediation is for, as guard templates see it."""

    rule: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    fingerprint: str
    incident_id: int


def ask_for(guards: Guards, alert: AlertRef, priority: str, *, approved: bool) -> Ask:
    """What a remediation of `alert` asks the guards for: its rendered targets and keys.

    Raises TemplateError when a guard template fails on the alert's labels."""
    context = render_context(
        alert.labels,
        alert.annotations,
        {"fingerprint": alert.fingerprint},
        {"id": alert.incident_id},
    )
    target = (
        guards.target.render(context)
        if guards.target
        else _default(alert.labels) or f"alert:{alert.fingerprint}"
    )
    rate = guards.rate_limit
    blast = guards.blast_radius
    return Ask(
        rule=alert.rule,
        priority=priority,
        targets=split_targets(target),
        rate_key=rate.key.render(context) if rate and rate.key else "",
        group=blast.group.render(context) if blast and blast.group else "",
        approved=approved,
    )


def record_success(conn: Connection, incident_id: int, now: datetime) -> None:
    """The incident's remediations verified: their rules' breakers close and reset."""
    for rule_name in store.settle(conn, incident_id, store.SUCCESS):
        if store.breaker(conn, rule_name) != BreakerState():
            store.save_breaker(conn, rule_name, BreakerState(), "remediator", now)


def split_targets(rendered: str) -> tuple[str, ...]:
    """The targets a rendered `target` names: comma-separated, blanks dropped, each once."""
    return tuple(dict.fromkeys(part.strip() for part in rendered.split(",") if part.strip()))


def _default(labels: Mapping[str, str]) -> str:
    """The alert's instance, else namespace/pod, else node; the caller falls back to the
    alert itself (its fingerprint, stable across its occurrences)."""
    if labels.get("instance"):
        return labels["instance"]
    if labels.get("pod"):
        return f"{labels.get('namespace', '')}/{labels['pod']}"
    return labels.get("node", "")
