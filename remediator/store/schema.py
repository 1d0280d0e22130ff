"""Every table remediator keeps, defined once for SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from remediator.store.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _opened_day(context: Any) -> str:
    opened: datetime = context.get_current_parameters()["opened_at"]
    return opened.astimezone(UTC).strftime("%Y-%m-%d")


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = UtcDateTime()

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("starts_at", Timestamp, nullable=False),
    Column("ends_at", Timestamp),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("generator_url", Text, nullable=False, default=""),
    Column("receiver", String(255), nullable=False, default=""),
    Column("group_key", Text, nullable=False, default=""),
    Column("external_url", Text, nullable=False, default=""),
    Column("received_at", Timestamp, nullable=False),
    # Alertmanager HA pairs and retries deliver the same state more than once.
    UniqueConstraint("fingerprint", "starts_at", "status", name="uq_alert_events_identity"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(512), nullable=False),
    Column("rule", String(255)),
    Column("state", String(32), nullable=False),
    Column("priority", String(4), nullable=False),
    Column("base_priority", String(4), nullable=False),
    Column("title", Text, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("runbook", Text),
    Column("alert_count", Integer, nullable=False, default=0),
    Column("firing_count", Integer, nullable=False, default=0),
    Column("opened_at", Timestamp, nullable=False),
    # The UTC day of opened_at (YYYY-MM-DD), filled in on insert: the quality report groups by
    # it in index order, which spares the database a sort of every incident of the period.
    Column("opened_day", String(10), nullable=False, default=_opened_day),
    Column("updated_at", Timestamp, nullable=False),
    Column("acknowledged_at", Timestamp),
    Column("acknowledged_by", String(255)),
    Column("resolved_at", Timestamp),
    Column("resolved_reason", Text),
    Column("ack_due_at", Timestamp, nullable=False),
    Column("resolve_due_at", Timestamp, nullable=False),
    Column("previous_incident_id", Id, ForeignKey("incidents.id")),
    Column("recurrence_count", Integer, nullable=False, default=0),
    # Set when the last remediation job of the incident ends; verification must hold by then.
    Column("verify_due_at", Timestamp),
    # A rule's PromQL verification: the rendered query and when it runs next.
    Column("verify_query", Text),
    Column("verify_check_at", Timestamp),
    # When the acknowledgement / resolution SLA was recorded as breached (once each).
    Column("ack_breached_at", Timestamp),
    Column("resolve_breached_at", Timestamp),
    # For the quality report, written once when each happens (see remediator.reports):
    # the first page to a human, the first hand-over by automation, and who resolved it
    # (automation: a remediation verified; human: resolved by hand; alert: the alerts
    # resolved on their own).
    Column("paged_at", Timestamp),
    Column("escalated_at", Timestamp),
    Column("resolution", String(16)),
    # Seconds from opening to the first human response (acknowledged, or resolved by hand)
    # and to resolution: stored as numbers so the report's percentiles need no date
    # arithmetic over every incident of a period.
    Column("response_seconds", Float),
    Column("resolve_seconds", Float),
    # At most one unresolved incident per key; replicas racing to open one collide here.
    Index(
        "uq_incidents_open_key",
        "key",
        unique=True,
        sqlite_where=text("resolved_at IS NULL"),
        postgresql_where=text("resolved_at IS NULL"),
    ),
    Index("ix_incidents_key_resolved_at", "key", "resolved_at"),
    Index("ix_incidents_state", "state"),
    # The quality report reads a range of opening times and only these columns: a covering
    # index lets it skip the wide rows (labels, annotations) entirely.
    Index(
        "ix_incidents_quality",
        "opened_day",
        "priority",
        "rule",
        "opened_at",
        "resolution",
        "resolve_seconds",
        "response_seconds",
        "paged_at",
        "escalated_at",
        "ack_breached_at",
        "resolve_breached_at",
        "previous_incident_id",
    ),
    Index("ix_incidents_verify_check_at", "verify_check_at"),
    # The SLA sweep looks for unbreached incidents past a due time, every second.
    Index("ix_incidents_ack_sla", "ack_breached_at", "acknowledged_at", "ack_due_at"),
    Index("ix_incidents_resolve_sla", "resolve_breached_at", "resolved_at", "resolve_due_at"),
)

incident_alerts = Table(
    "incident_alerts",
    metadata,
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("starts_at", Timestamp, nullable=False),
    Column("ends_at", Timestamp),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("generator_url", Text, nullable=False, default=""),
    Column("first_seen_at", Timestamp, nullable=False),
    Column("last_seen_at", Timestamp, nullable=False),
    Index("ix_incident_alerts_fingerprint_status", "fingerprint", "status"),
)

timeline = Table(
    "timeline",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("actor_type", String(16), nullable=False),  # system | rule | user
    Column("actor", String(255), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("from_state", String(32)),
    Column("to_state", String(32)),
    Column("message", Text, nullable=False),
    Column("data", JSON),
    Index("ix_timeline_incident_id_id", "incident_id", "id"),
)

# One remediation of one alert (or one incident, per the rule's `per`): claimed by a worker
# with a lease, so a crash leaves a row whose lease lapses, never a job "running" forever.
remediation_jobs = Table(
    "remediation_jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("rule", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("starts_at", Timestamp, nullable=False),
    # queued | awaiting_approval | running | succeeded | failed | cancelled | interrupted |
    # blocked | rejected
    Column("state", String(32), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("started_at", Timestamp),
    Column("finished_at", Timestamp),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", Timestamp),
    Column("outcome", Text),
    # Approval gates: the job waits (state awaiting_approval) until approved or this time.
    Column("approval_due_at", Timestamp),
    Column("approved_by", String(255)),
    Column("approved_at", Timestamp),
    Index("ix_remediation_jobs_state_id", "state", "id"),
    # A resolved alert cancels its queued jobs: found by fingerprint, however many are queued.
    Index("ix_remediation_jobs_fingerprint_state", "fingerprint", "state"),
    Index("ix_remediation_jobs_incident_id", "incident_id"),
    # The quality report counts a period's jobs per rule and state from this index alone,
    # in its order (no sort).
    Index("ix_remediation_jobs_quality", "rule", "state", "dry_run", "created_at"),
    # The dashboard's rules page: each rule's latest jobs.
    Index("ix_remediation_jobs_rule_id", "rule", "id"),
)

# Every attempt of every action of a job: rendered parameters, outcome, capped output.
action_runs = Table(
    "action_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", Id, ForeignKey("remediation_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("action_index", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("params", JSON, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp, nullable=False),
    # succeeded | failed | timeout | dry_run
    Column("outcome", String(16), nullable=False),
    Column("retryable", Boolean, nullable=False),
    Column("summary", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("output_truncated", Boolean, nullable=False),
    Index("ix_action_runs_job_id", "job_id"),
    Index("ix_action_runs_incident_id", "incident_id"),
)

# An incident's escalation chain: which policy step is next, and when. Claimed by moving
# next_at (a lease); stopped when a human acknowledges or the incident resolves.
escalations = Table(
    "escalations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("policy", String(255), nullable=False),
    # active | stopped | done
    Column("state", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("next_at", Timestamp),
    Column("reason", Text, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Column("stop_reason", Text),
    Index("ix_escalations_state_next_at", "state", "next_at"),
    Index("ix_escalations_incident_id", "incident_id"),
)

# One notification of one channel for one step (or the acknowledge/resolve that ends the
# chain). The unique key makes "never the same step twice" a database fact, whatever the
# replicas and restarts; delivery is claimed with a lease and retried with backoff.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("escalation_id", Id, ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(255), nullable=False),
    # trigger | acknowledge | resolve
    Column("event", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("recipients", JSON, nullable=False),
    # pending | sending | sent | failed
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_at", Timestamp, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", Timestamp),
    Column("created_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Column("summary", Text),
    Column("reference", Text),
    UniqueConstraint(
        "escalation_id", "channel", "event", "step", "cycle", name="uq_notifications_step"
    ),
    Index("ix_notifications_state_next_at", "state", "next_at"),
    Index("ix_notifications_incident_id", "incident_id"),
)

# What a human said fixed an incident, kept with its rule and key: later escalations of the
# same rule show it (the knowledge base that grows from resolutions).
known_resolutions = Table(
    "known_resolutions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("rule", String(255)),
    Column("incident_key", String(512), nullable=False),
    Column("note", Text, nullable=False),
    Column("resolved_by", String(255), nullable=False),
    Column("at", Timestamp, nullable=False),
    Index("ix_known_resolutions_rule_at", "rule", "at"),
    Index("ix_known_resolutions_key_at", "incident_key", "at"),
)

# Guard state: every remediation the guards let run, its targets, and its outcome. Rate
# limits, cooldowns, per-target concurrency and blast radius are counts over these rows, so
# they survive restarts and hold across replicas (decisions take one lock, see store.guards).
guard_remediations = Table(
    "guard_remediations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", Id, ForeignKey("remediation_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("rule", String(255), nullable=False),
    Column("rate_key", String(512), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("ended_at", Timestamp),
    # success | failure (failed or not verified); NULL while undecided or taken over by a human
    Column("outcome", String(16)),
    UniqueConstraint("job_id", name="uq_guard_remediations_job_id"),
    Index("ix_guard_remediations_rule_rate_key_started_at", "rule", "rate_key", "started_at"),
    Index("ix_guard_remediations_incident_id", "incident_id"),
)

guard_targets = Table(
    "guard_targets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "remediation_id",
        Id,
        ForeignKey("guard_remediations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("rule", String(255), nullable=False),
    Column("target", String(512), nullable=False),
    Column("group_key", String(512), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("ended_at", Timestamp),
    Index("ix_guard_targets_target_ended_at", "target", "ended_at"),
    Index("ix_guard_targets_rule_group_key_started_at", "rule", "group_key", "started_at"),
    Index("ix_guard_targets_remediation_id", "remediation_id"),
)

# One row per rule whose breaker has ever counted a failure.
guard_breakers = Table(
    "guard_breakers",
    metadata,
    Column("rule", String(255), primary_key=True),
    # closed | open | half_open
    Column("position", String(16), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("open_until", Timestamp),
    Column("trial_until", Timestamp),
    Column("updated_at", Timestamp, nullable=False),
    Column("updated_by", String(255), nullable=False),
)

# The global kill switch: a pause is on from paused_at until resumed (or `until`).
guard_pauses = Table(
    "guard_pauses",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("paused_at", Timestamp, nullable=False),
    Column("paused_by", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("until", Timestamp),
    Column("resumed_at", Timestamp),
    Column("resumed_by", String(255)),
    Index("ix_guard_pauses_resumed_at", "resumed_at"),
)
