"""The REST API's request and response shapes; the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from remediator.durations import Duration


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Incident(_Out):
    id: int
    key: str = Field(description="rule name plus the group_by label values")
    rule: str | None = Field(description="the rule that opened it; null when no rule matched")
    state: str
    priority: str
    base_priority: str = Field(description="priority before any raise for many alerts")
    title: str
    labels: dict[str, str] = Field(description="labels common to all the incident's alerts")
    annotations: dict[str, str]
    runbook: str | None
    alert_count: int
    firing_count: int
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_reason: str | None
    resolution: str | None = Field(
        description="who resolved it: automation (a verified remediation), human, or alert "
        "(its alerts resolved on their own)"
    )
    paged_at: datetime | None = Field(description="when a human was first paged about it")
    escalated_at: datetime | None = Field(description="when automation handed it to humans")
    response_seconds: float | None = Field(
        description="opened → first human response (acknowledged, or resolved by hand)"
    )
    resolve_seconds: float | None = Field(description="opened → resolved")
    ack_due_at: datetime
    resolve_due_at: datetime
    previous_incident_id: int | None = Field(description="the recent incident this one recurs")
    recurrence_count: int


class Alert(_Out):
    fingerprint: str
    status: str
    starts_at: datetime
    ends_at: datetime | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    first_seen_at: datetime
    last_seen_at: datetime


class TimelineEntry(_Out):
    id: int
    at: datetime
    actor_type: str = Field(description="system, rule or user")
    actor: str
    kind: str
    from_state: str | None
    to_state: str | None
    message: str
    data: dict[str, Any] | None


class ActionRun(_Out):
    """One attempt of one action: rendered parameters, outcome, output (size-capped)."""

    action_index: int
    type: str
    attempt: int
    params: dict[str, Any]
    started_at: datetime
    finished_at: datetime
    outcome: str = Field(description="succeeded, failed, timeout or dry_run")
    retryable: bool
    summary: str
    output: str
    output_truncated: bool


class RemediationJob(_Out):
    """A remediation of one alert (or of the incident, per the rule's `per`)."""

    id: int
    rule: str
    fingerprint: str
    state: str = Field(
        description="queued, awaiting_approval, running, succeeded, failed, cancelled, "
        "interrupted, blocked (by a guard), rejected (approval refused or not given)"
    )
    dry_run: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str | None
    approval_due_at: datetime | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    runs: list[ActionRun] = Field(default_factory=list)


class NotificationOut(_Out):
    """One notification of one channel: a policy step's page, or the chain's ending."""

    id: int
    channel: str
    event: str = Field(description="trigger, acknowledge or resolve")
    step: int = Field(description="the policy step (0-based); -1 for the chain's ending")
    cycle: int
    recipients: list[str]
    state: str = Field(description="pending, sending, sent, failed or cancelled")
    attempts: int
    next_at: datetime
    created_at: datetime
    finished_at: datetime | None
    summary: str | None
    reference: str | None = Field(description="the receiver's id for it, when it gave one")


class Escalation(_Out):
    """An escalation chain: a policy's steps for this incident, until a human takes it."""

    id: int
    policy: str
    state: str = Field(description="active, stopped (acknowledged or resolved) or done")
    step: int
    cycle: int
    next_at: datetime | None
    reason: str
    started_at: datetime
    finished_at: datetime | None
    stop_reason: str | None
    notifications: list[NotificationOut] = Field(default_factory=list)


class KnownResolutionOut(_Out):
    """What a human said fixed an earlier incident of the same rule or key."""

    incident_id: int
    note: str
    resolved_by: str
    at: datetime
    same_key: bool = Field(description="the earlier incident had the same key")


class IncidentDetail(Incident):
    alerts: list[Alert]
    timeline: list[TimelineEntry]
    remediation: list[RemediationJob]
    escalations: list[Escalation]
    known_resolutions: list[KnownResolutionOut] = Field(
        description="what fixed earlier incidents of this rule or key, same key first"
    )


class IncidentPage(BaseModel):
    incidents: list[Incident]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next, older page")


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(None, max_length=4000)


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=4000)


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=20000)


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=4000, description="why; shown everywhere")
    duration: Duration | None = Field(
        None, alias="for", description="resume by itself after this long, e.g. 2h"
    )


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=4000)


class RuleSummary(BaseModel):
    name: str
    match: list[str]
    on: str
    group_by: list[str] | None
    priority: str | None
    actions: list[str] = Field(description="action types, in order")
    runbook: str | None
    continue_: bool = Field(alias="continue")
    source: str = Field(description="file:line where the rule is defined")


class RuleList(BaseModel):
    version: str = Field(
        description="hash of the rule files this replica runs: replicas that agree run the same"
    )
    rules: list[RuleSummary]
    files: list[str]
    last_reload_ok: bool
    problems: list[str] = Field(description="why the last reload failed, if it did")


class ReloadResult(BaseModel):
    ok: bool
    version: str = Field(description="the rules version in force after the reload")
    rules: int
    problems: list[str]


class Error(BaseModel):
    error: str
    details: list[dict[str, str]] | None = None
