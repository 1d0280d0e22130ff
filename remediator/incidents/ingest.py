"""From alert deliveries to incidents, in the same transaction that stores the deliveries.

One transaction stores what is new, matches it against the rules, opens or attaches to
incidents by key, resolves what the source resolved, raises priorities, links
recurrences and writes the timeline. Either all of that commits before Alertmanager hears
2xx, or none of it does and Alertmanager retries. A transaction may carry the alerts of
several webhook requests (group commit, see `remediator.intake.committer`); each request
still learns which of its own alerts were new.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from remediator.config import Config
from remediator.escalation import chain as escalation_chain
from remediator.guards.gate import record_success
from remediator.incidents.priority import Priority, priority_for
from remediator.incidents.sla import due_times
from remediator.incidents.states import IncidentState, check_transition
from remediator.incidents.timeline import Actor, TimelineEntry
from remediator.intake.model import AlertEvent
from remediator.remediation.executors import write_log_action
from remediator.rules import CompiledRule, RuleSet, Template, TemplateError, render_context
from remediator.store import alerts as alert_store
from remediator.store import incidents as store
from remediator.store import jobs
from remediator.store.database import Database

log = logging.getLogger(__name__)

UNMATCHED_PREFIX = "unmatched"
# States in which an escalation chain may be paging humans.
_PAGED = frozenset({IncidentState.escalated.value, IncidentState.acknowledged.value})


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class IngestResult:
    """What one transaction changed, for metrics; `stored` has one count per submission."""

    stored: list[int] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    stale: int = 0
    opened: Counter[str] = field(default_factory=Counter)
    rule_matches: Counter[str] = field(default_factory=Counter)
    resolved_incidents: int = 0
    jobs_queued: int = 0
    jobs_cancelled: int = 0
    escalation_changes: int = 0


class _Known(NamedTuple):
    """An alert's last known state inside one incident."""

    status: str
    starts_at: datetime


@dataclass(slots=True)
class _Incident:
    """An incident as this transaction sees it; `touched` ones are written back at the end."""

    id: int
    key: str
    rule: str | None
    state: str
    priority: Priority
    base_priority: Priority
    labels: dict[str, str]
    opened_at: datetime
    ack_due_at: datetime
    resolve_due_at: datetime
    created_now: bool = False
    touched: bool = False
    resolved_at: datetime | None = None
    resolved_reason: str | None = None
    resolution: str | None = None
    resolve_seconds: float | None = None

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any], *, created_now: bool = False) -> _Incident:
        """Build from an `incidents` row (or the values about to be inserted as one)."""
        return cls(
            id=columns["id"],
            key=columns["key"],
            rule=columns["rule"],
            state=columns["state"],
            priority=Priority(columns["priority"]),
            base_priority=Priority(columns["base_priority"]),
            labels=dict(columns["labels"]),
            opened_at=columns["opened_at"],
            ack_due_at=columns["ack_due_at"],
            resolve_due_at=columns["resolve_due_at"],
            created_now=created_now,
        )

    def context(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "rule": self.rule,
            "state": self.state,
            "priority": self.priority.value,
        }


class IncidentIntake:
    """Applies batches of alert events to incidents; safe to call concurrently."""

    def __init__(
        self,
        db: Database,
        rules: Callable[[], RuleSet],
        config: Config,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._rules = rules
        self._config = config
        self._clock = clock

    async def ingest(self, events: Sequence[AlertEvent]) -> IngestResult:
        """Commit the events and their effects; raise if the database refused them."""
        return await self.ingest_many([events])

    async def ingest_many(self, submissions: Sequence[Sequence[AlertEvent]]) -> IngestResult:
        """Commit several submissions in one transaction, in order; all or nothing."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient_conflict),
            stop=stop_after_attempt(5),
            wait=wait_random_exponential(multiplier=0.005, max=0.2),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                batch = partial(_run_batch, self._rules(), self._config, self._clock(), submissions)
                return await self._db.write(batch)
        raise AssertionError("unreachable: tenacity reraises the last error")


def _run_batch(
    rules: RuleSet,
    config: Config,
    now: datetime,
    submissions: Sequence[Sequence[AlertEvent]],
    conn: Connection,
) -> IngestResult:
    return _Batch(conn, rules, config, now).run(submissions)


def _is_transient_conflict(exc: BaseException) -> bool:
    """Conflicts another writer caused; the whole transaction is simply tried again."""
    if isinstance(exc, IntegrityError):
        return True  # two replicas opened the same incident key at once
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return code in {"40001", "40P01"}  # serialization failure, deadlock
    return False


class _Batch:
    """The work of one transaction. Short-lived: build, run once, discard."""

    def __init__(self, conn: Connection, rules: RuleSet, config: Config, now: datetime):
        self.conn = conn
        self.rules = rules
        self.config = config
        self.now = now
        self.result = IngestResult()
        self.incidents: dict[int, _Incident] = {}
        self.timeline: list[TimelineEntry] = []
        self.after_timeline: list[Callable[[], object]] = []
        # (incident id, fingerprint) -> state, for every alert this batch concerns that sits
        # in an unresolved incident; kept current as the batch attaches alerts.
        self.known: dict[tuple[int, str], _Known] = {}
        self.jobs: list[dict[str, Any]] = []
        # Incidents whose job waited for approval (so a chain may be paging for it).
        self.approval_asked: set[int] = set()
        self.verified: list[int] = []  # incidents resolved while verifying a remediation

    def run(self, submissions: Sequence[Sequence[AlertEvent]]) -> IngestResult:
        events = [event for submission in submissions for event in submission]
        self.result.received.update(event.status for event in events)
        new = alert_store.insert_new(self.conn, events, self.now)
        self.result.duplicates = len(events) - len(new)
        self.result.stored = _stored_per_submission(submissions, new)
        if new:
            attached = store.alerts_in_open_incidents(self.conn, {e.fingerprint for e in new})
            self.known = {
                (r.incident_id, r.fingerprint): _Known(r.status, r.starts_at) for r in attached
            }
            firing = self._drop_superseded_firing([e for e in new if e.status == "firing"])
            self._apply_firing(firing)
            self._apply_resolved([e for e in new if e.status == "resolved"])
            jobs.insert_jobs(self.conn, self.jobs)
            self.result.jobs_queued = len(self.jobs)
            self._settle()
        return self.result

    def _drop_superseded_firing(self, events: list[AlertEvent]) -> list[AlertEvent]:
        """A firing delivery that arrives after the same occurrence resolved is stale."""
        done = alert_store.resolved_occurrences(
            self.conn, [(e.fingerprint, e.starts_at) for e in events]
        )
        fresh = [e for e in events if (e.fingerprint, e.starts_at) not in done]
        self.result.stale += len(events) - len(fresh)
        return fresh

    # -- firing -----------------------------------------------------------------------

    def _apply_firing(self, events: list[AlertEvent]) -> None:
        plans: dict[str, list[tuple[CompiledRule | None, AlertEvent]]] = {}
        for event in events:
            matched = self.rules.match(event.labels, "firing")
            for rule in matched:
                self.result.rule_matches[rule.name] += 1
                key = rule.incident_key(event.fingerprint, event.labels)
                plans.setdefault(key, []).append((rule, event))
            if not matched:
                key = f"{UNMATCHED_PREFIX}/fingerprint={event.fingerprint}"
                plans.setdefault(key, []).append((None, event))
        if not plans:
            return
        by_key = self._open_or_create(plans)
        rows: list[dict[str, Any]] = []
        for key, plan in plans.items():
            incident = by_key[key]
            for matched_rule, event in plan:
                slot = (incident.id, event.fingerprint)
                known = self.known.get(slot)
                first_of_new = incident.created_now and not incident.touched
                row = self._attach(incident, matched_rule, event, known)
                if row is not None:
                    self.known[slot] = _Known("firing", event.starts_at)
                    rows.append(row)
                    if matched_rule is not None and matched_rule.remediates:
                        self._maybe_queue_job(incident, matched_rule, event, known, first_of_new)
        store.upsert_incident_alerts(self.conn, rows)

    def _open_or_create(
        self, plans: dict[str, list[tuple[CompiledRule | None, AlertEvent]]]
    ) -> dict[str, _Incident]:
        existing = store.open_by_keys(self.conn, plans)
        by_key = {key: self._track(row) for key, row in existing.items()}
        missing = [key for key in plans if key not in existing]
        if missing:
            by_key.update(self._create(missing, plans))
        return by_key

    def _track(self, row: Any) -> _Incident:
        incident = self.incidents.get(row.id)
        if incident is None:
            incident = _Incident.from_columns(row._mapping)
            self.incidents[row.id] = incident
        return incident

    def _create(
        self, keys: list[str], plans: dict[str, list[tuple[CompiledRule | None, AlertEvent]]]
    ) -> dict[str, _Incident]:
        window = self.config.incidents.recurrence_window
        previous = store.last_resolved_since(self.conn, keys, self.now - window)
        prio = self.config.priorities
        rows: list[dict[str, Any]] = []
        notes: list[tuple[CompiledRule | None, AlertEvent, str | None, Any]] = []
        for key in keys:
            rule, first = plans[key][0]
            priority = priority_for(
                rule.priority if rule else None, first.labels, prio.severity_map, prio.default
            )
            ack_due, resolve_due = due_times(prio.sla, priority, self.now)
            title, title_error = _title(rule, first, key, priority)
            before = previous.get(key)
            rows.append(
                {
                    "key": key,
                    "rule": rule.name if rule else None,
                    "state": IncidentState.open.value,
                    "priority": priority.value,
                    "base_priority": priority.value,
                    "title": title,
                    "labels": first.labels,
                    "annotations": first.annotations,
                    "runbook": rule.runbook if rule else None,
                    "alert_count": 0,
                    "firing_count": 0,
                    "opened_at": self.now,
                    "updated_at": self.now,
                    "ack_due_at": ack_due,
                    "resolve_due_at": resolve_due,
                    "previous_incident_id": before.id if before else None,
                    "recurrence_count": before.recurrence_count + 1 if before else 0,
                }
            )
            notes.append((rule, first, title_error, before))
        ids = store.insert_incidents(self.conn, rows)
        created = {}
        for row, (rule, first, title_error, before) in zip(rows, notes, strict=True):
            incident = _Incident.from_columns({**row, "id": ids[row["key"]]}, created_now=True)
            self.incidents[incident.id] = incident
            created[incident.key] = incident
            self._record_opening(incident, rule, first, title_error, before)
        return created

    def _record_opening(
        self,
        incident: _Incident,
        rule: CompiledRule | None,
        first: AlertEvent,
        title_error: str | None,
        before: Any,
    ) -> None:
        alertname = first.labels.get("alertname", first.fingerprint)
        if rule is None:
            actor, why = Actor.system(), f"no rule matched alert {alertname}; kept for a human"
            self._escalate_unmatched(incident, alertname)
        else:
            actor, why = Actor.rule(rule.name), f"rule {rule.name} matched alert {alertname}"
        self._note(
            incident,
            actor,
            "opened",
            f"opened at {incident.priority}: {why}",
            to_state=IncidentState.open.value,
        )
        if title_error:
            self._note(incident, actor, "template_error", f"title template failed: {title_error}")
        if before is not None:
            self._note(
                incident,
                Actor.system(),
                "recurrence",
                f"recurs incident {before.id} (occurrence {before.recurrence_count + 2} "
                f"within {self.config.incidents.recurrence_window})",
                data={"previous_incident_id": before.id},
            )

    def _escalate_unmatched(self, incident: _Incident, alertname: str) -> None:
        """With `escalation.unmatched_policy`, alerts no rule knows page a human at once."""
        policy = self.config.escalation.unmatched_policy
        if policy is not None:
            why = f"no rule matched alert {alertname}: automation has nothing to try"
            self.after_timeline.append(partial(self._hand_to_humans, incident.id, policy, why))

    def _hand_to_humans(self, incident_id: int, policy: str, why: str) -> None:
        escalation_chain.start(self.conn, incident_id, policy, why, self.now)
        store.mark_first(self.conn, incident_id, "escalated_at", self.now)

    def _attach(
        self,
        incident: _Incident,
        rule: CompiledRule | None,
        event: AlertEvent,
        known: _Known | None,
    ) -> dict[str, Any] | None:
        """Row to upsert for this alert in this incident, or None when the event is stale."""
        name = event.labels.get("alertname", event.fingerprint)
        if known is not None and event.starts_at < known.starts_at:
            self.result.stale += 1  # an older occurrence delivered late
            return None
        # The first alert of an incident opened in this batch is told of by "opened".
        first_of_new = incident.created_now and not incident.touched
        if known is None:
            if not first_of_new:
                self._note(
                    incident,
                    Actor.system(),
                    "alert_attached",
                    f"alert {name} ({event.fingerprint}) attached",
                )
        elif known.status == "resolved":
            self._note(
                incident,
                Actor.system(),
                "alert_firing",
                f"alert {name} ({event.fingerprint}) is firing again",
            )
        incident.labels = {k: v for k, v in incident.labels.items() if event.labels.get(k) == v}
        incident.touched = True
        if rule is not None and not rule.remediates:  # else they run in the job, in order
            self._run_log_actions(rule, event, incident)
        return {
            "incident_id": incident.id,
            "fingerprint": event.fingerprint,
            "status": "firing",
            "starts_at": event.starts_at,
            "ends_at": event.ends_at,
            "labels": event.labels,
            "annotations": event.annotations,
            "generator_url": event.generator_url,
            "first_seen_at": self.now,
            "last_seen_at": self.now,
        }

    def _maybe_queue_job(
        self,
        incident: _Incident,
        rule: CompiledRule,
        event: AlertEvent,
        known: _Known | None,
        first_of_new: bool,
    ) -> None:
        """Queue a job for a new firing occurrence (per alert) or a new incident (per incident)."""
        if rule.per == "incident":
            if not first_of_new:
                return
        elif known is not None and known.status == "firing":
            return  # the same alert still firing, or a newer startsAt of a firing alert
        dry_run = rule.dry_run if rule.dry_run is not None else self.config.remediation.dry_run
        self.jobs.append(jobs.job_row(incident.id, rule.name, event, dry_run, self.now))
        actions = ", ".join(action.type for action in rule.actions)
        self._note(
            incident,
            Actor.rule(rule.name),
            "remediation_queued",
            f"remediation queued for alert {event.labels.get('alertname', event.fingerprint)} "
            f"({event.fingerprint}): {actions}" + (" [dry run]" if dry_run else ""),
        )

    # -- resolved ---------------------------------------------------------------------

    def _apply_resolved(self, events: list[AlertEvent]) -> None:
        if not events:
            return
        matched = {id(e): self.rules.match(e.labels, "resolved") for e in events}
        for rules in matched.values():
            self.result.rule_matches.update(rule.name for rule in rules)
        resolving = {e.fingerprint for e in events}
        by_fp: dict[str, list[tuple[int, _Known]]] = {}
        for (incident_id, fingerprint), known in self.known.items():
            if fingerprint in resolving:
                by_fp.setdefault(fingerprint, []).append((incident_id, known))
        untracked = {i for slots in by_fp.values() for i, _ in slots} - self.incidents.keys()
        for row in store.incidents_by_ids(self.conn, untracked).values():
            self._track(row)
        updates = []
        for event in events:
            for incident_id, known in by_fp.get(event.fingerprint, []):
                if event.starts_at < known.starts_at:
                    self.result.stale += 1
                    continue
                incident = self.incidents[incident_id]
                updates.append(self._resolve_alert(incident, event, matched[id(event)]))
        store.mark_alerts_resolved(self.conn, updates)
        self._cancel_queued_jobs({(u["incident_id"], u["fingerprint"]) for u in updates})

    def _cancel_queued_jobs(self, resolved: set[tuple[int, str]]) -> None:
        """A job still waiting when its alert resolves is not needed any more."""
        if not resolved:
            return
        queued = jobs.queued_for(self.conn, {fingerprint for _, fingerprint in resolved})
        cancelled = [job for job in queued if (job.incident_id, job.fingerprint) in resolved]
        jobs.cancel(
            self.conn, [job.id for job in cancelled], "resolved before remediation", self.now
        )
        self.result.jobs_cancelled = len(cancelled)
        self.approval_asked.update(
            job.incident_id for job in cancelled if job.state == jobs.AWAITING_APPROVAL
        )
        for job in cancelled:
            self._note(
                self.incidents[job.incident_id],
                Actor.system(),
                "remediation_cancelled",
                f"remediation job {job.id} cancelled: alert {job.fingerprint} resolved before "
                "remediation",
            )

    def _resolve_alert(
        self, incident: _Incident, event: AlertEvent, rules: list[CompiledRule]
    ) -> dict[str, Any]:
        name = event.labels.get("alertname", event.fingerprint)
        self._note(
            incident,
            Actor.system(),
            "alert_resolved",
            f"alert {name} ({event.fingerprint}) resolved at source",
        )
        incident.touched = True
        for rule in rules:
            self._run_log_actions(rule, event, incident)
        return {
            "incident_id": incident.id,
            "fingerprint": event.fingerprint,
            "ends_at": event.ends_at or self.now,
            "last_seen_at": self.now,
        }

    # -- actions available in this version ---------------------------------------------

    def _run_log_actions(self, rule: CompiledRule, event: AlertEvent, incident: _Incident) -> None:
        actions = [action for action in rule.actions if action.type == "log"]
        if not actions:
            return
        context = render_context(
            event.labels, event.annotations, _alert_context(event), incident.context()
        )
        for action in actions:
            try:
                message = action.params["message"].render(context)
            except TemplateError as exc:
                self._note(
                    incident,
                    Actor.rule(rule.name),
                    "template_error",
                    f"log action message failed: {exc}",
                )
                continue
            level = str(action.params.get("level", "info"))
            write_log_action(rule.name, incident.id, level, message)
            self._note(incident, Actor.rule(rule.name), "log", message)

    # -- counts, priority, resolution, write-back ------------------------------------------

    def _settle(self) -> None:
        touched = [i for i in self.incidents.values() if i.touched]
        counts = store.alert_counts(self.conn, (i.id for i in touched))
        updates = []
        for incident in touched:
            total, firing = counts.get(incident.id, (0, 0))
            self._maybe_raise(incident, total)
            self._maybe_resolve(incident, total, firing)
            if incident.created_now:  # counted once its priority is final
                self.result.opened[incident.priority.value] += 1
            updates.append(
                {
                    "id": incident.id,
                    "state": incident.state,
                    "priority": incident.priority.value,
                    "labels": incident.labels,
                    "alert_count": total,
                    "firing_count": firing,
                    "updated_at": self.now,
                    "ack_due_at": incident.ack_due_at,
                    "resolve_due_at": incident.resolve_due_at,
                    "resolved_at": incident.resolved_at,
                    "resolved_reason": incident.resolved_reason,
                    "resolution": incident.resolution,
                    "resolve_seconds": incident.resolve_seconds,
                }
            )
        store.update_incidents(self.conn, updates)
        store.append_timeline(self.conn, self.timeline)
        for step in self.after_timeline:  # their own timeline entries follow the cause's
            step()
        self.result.escalation_changes = len(self.after_timeline)
        for incident_id in self.verified:
            record_success(self.conn, incident_id, self.now)

    def _maybe_raise(self, incident: _Incident, total: int) -> None:
        threshold = self.config.priorities.raise_after_alerts
        raised = incident.base_priority.raised()
        already = incident.priority != incident.base_priority or raised == incident.priority
        if total < threshold or already:
            return
        self._note(
            incident,
            Actor.system(),
            "priority_raised",
            f"priority raised {incident.priority} → {raised}: {total} alerts "
            f"(threshold {threshold})",
        )
        incident.priority = raised
        incident.ack_due_at, incident.resolve_due_at = due_times(
            self.config.priorities.sla, raised, incident.opened_at
        )

    def _maybe_resolve(self, incident: _Incident, total: int, firing: int) -> None:
        if firing > 0 or total == 0 or incident.state == IncidentState.resolved:
            return
        if incident.state == IncidentState.remediating:
            return  # the running action finishes first; then verification decides
        check_transition(incident.id, incident.state, IncidentState.resolved)
        reason = f"source resolved: all {total} alert(s) resolved"
        if incident.state == IncidentState.verifying:
            reason = f"auto-remediated: all {total} alert(s) resolved after remediation"
        if incident.state in _PAGED or incident.id in self.approval_asked:
            # The humans paged (or asked to approve) hear that it is over.
            self.after_timeline.append(
                partial(escalation_chain.stop, self.conn, incident.id, "resolve", reason, self.now)
            )
        verified = incident.state == IncidentState.verifying
        if verified:  # the remediation worked: breakers reset
            self.verified.append(incident.id)
        incident.resolution = "automation" if verified else "alert"
        self._note(
            incident,
            Actor.system(),
            "state_changed",
            reason,
            from_state=incident.state,
            to_state=IncidentState.resolved.value,
        )
        incident.state = IncidentState.resolved.value
        incident.resolved_at, incident.resolved_reason = self.now, reason
        incident.resolve_seconds = store.seconds_since(incident.opened_at, self.now)
        self.result.resolved_incidents += 1

    def _note(
        self,
        incident: _Incident,
        actor: Actor,
        kind: str,
        message: str,
        *,
        from_state: str | None = None,
        to_state: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.timeline.append(
            TimelineEntry(incident.id, self.now, actor, kind, message, from_state, to_state, data)
        )


def _stored_per_submission(
    submissions: Sequence[Sequence[AlertEvent]], new: Sequence[AlertEvent]
) -> list[int]:
    """How many of each submission's alerts were new; a repeat counts for the first sender."""
    fresh = {event.identity for event in new}
    stored = []
    for submission in submissions:
        mine = {event.identity for event in submission} & fresh
        fresh -= mine
        stored.append(len(mine))
    return stored


def _alert_context(event: AlertEvent) -> dict[str, Any]:
    return {
        "fingerprint": event.fingerprint,
        "status": event.status,
        "starts_at": event.starts_at.isoformat(),
        "ends_at": event.ends_at.isoformat() if event.ends_at else None,
        "generator_url": event.generator_url,
    }


def _title(
    rule: CompiledRule | None, event: AlertEvent, key: str, priority: Priority
) -> tuple[str, str | None]:
    """The incident's title and, if the rule's title template failed, why."""
    fallback = event.annotations.get("summary") or event.labels.get("alertname") or key
    template: Template | None = rule.title if rule else None
    if template is None:
        return fallback, None
    incident = {"key": key, "rule": rule.name if rule else None, "priority": priority.value}
    context = render_context(event.labels, event.annotations, _alert_context(event), incident)
    try:
        return template.render(context), None
    except TemplateError as exc:
        return fallback, str(exc)
