"""Every Prometheus metric remediator exports, defined once.

Each app gets its own `CollectorRegistry`, so tests (and several apps in one process)
never share counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

if TYPE_CHECKING:
    from remediator.incidents.ingest import IngestResult


class Metrics:
    """The service's metrics, registered on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.alerts_received = Counter(
            "remediator_alerts_received_total",
            "Alerts received from Alertmanager, by the alert's own status.",
            ["status"],
            registry=r,
        )
        self.alerts_duplicate = Counter(
            "remediator_alerts_duplicate_total",
            "Alerts received again with an already stored (fingerprint, startsAt, status).",
            registry=r,
        )
        self.alerts_stale = Counter(
            "remediator_alerts_stale_total",
            "Alerts ignored because a newer state of the same alert was already stored.",
            registry=r,
        )
        self.webhook_requests = Counter(
            "remediator_webhook_requests_total",
            "Webhook requests by HTTP response code.",
            ["code"],
            registry=r,
        )
        self.webhook_duration = Histogram(
            "remediator_webhook_request_duration_seconds",
            "Time to validate, store and process one webhook request.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.incidents_opened = Counter(
            "remediator_incidents_opened_total",
            "Incidents opened, by priority.",
            ["priority"],
            registry=r,
        )
        self.guard_decisions = Counter(
            "remediator_guard_decisions_total",
            "Guard decisions on remediations: which guard, for which rule, allowed, blocked or "
            "pending (waiting for approval).",
            ["guard", "rule", "decision"],
            registry=r,
        )
        self.breaker_opened = Counter(
            "remediator_circuit_breaker_opened_total",
            "Times a rule's circuit breaker opened (its automation stopped).",
            ["rule"],
            registry=r,
        )
        self.breaker_open = Gauge(
            "remediator_circuit_breaker_open",
            "1 while a rule's circuit breaker is open or half-open (read from the database at "
            "scrape).",
            ["rule"],
            registry=r,
        )
        self.jobs_oldest_queued = Gauge(
            "remediator_remediation_jobs_oldest_queued_seconds",
            "Age of the oldest remediation job still queued, 0 when none (read from the "
            "database at scrape): growing means no worker claims jobs.",
            registry=r,
        )
        self.automation_paused = Gauge(
            "remediator_automation_paused",
            "1 while the global pause (kill switch) is on (read from the database at scrape).",
            registry=r,
        )
        self.incidents_open = Gauge(
            "remediator_incidents_open",
            "Unresolved incidents, by state and priority (read from the database at scrape).",
            ["state", "priority"],
            registry=r,
        )
        self.rule_matches = Counter(
            "remediator_rule_matches_total",
            "Alerts matched, by rule.",
            ["rule"],
            registry=r,
        )
        self.rules_loaded = Gauge("remediator_rules_loaded", "Rules currently active.", registry=r)
        self.rules_version = Info(
            "remediator_rules_version",
            "The version (hash of the rule files) of the rules this replica runs.",
            registry=r,
        )
        self.rules_last_reload_success = Gauge(
            "remediator_rules_last_reload_success",
            "Whether the last rule reload succeeded (1) or kept the old rules (0).",
            registry=r,
        )
        self.intake_commit_alerts = Histogram(
            "remediator_intake_commit_alerts",
            "Alerts stored per database commit (several webhook requests share one commit).",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
            registry=r,
        )
        self.remediation_jobs_queued = Counter(
            "remediator_remediation_jobs_queued_total",
            "Remediation jobs queued by the intake.",
            registry=r,
        )
        self.remediation_jobs = Counter(
            "remediator_remediation_jobs_total",
            "Remediation jobs ended, by final state (succeeded, failed, interrupted).",
            ["state"],
            registry=r,
        )
        self.remediation_jobs_cancelled = Counter(
            "remediator_remediation_jobs_cancelled_total",
            "Queued remediation jobs cancelled because their alert resolved first.",
            registry=r,
        )
        self.action_runs = Counter(
            "remediator_action_runs_total",
            "Action attempts, by action type and outcome (succeeded, failed, timeout, dry_run).",
            ["type", "outcome"],
            registry=r,
        )
        self.verification_checks = Counter(
            "remediator_verification_checks_total",
            "Verification checks after remediation (PromQL), by outcome: healthy, unhealthy, "
            "error.",
            ["outcome"],
            registry=r,
        )
        self.notifications = Counter(
            "remediator_notifications_total",
            "Notification delivery attempts, by channel, event (trigger, acknowledge, "
            "resolve) and outcome (sent, retried, failed).",
            ["channel", "event", "outcome"],
            registry=r,
        )
        self.sla_breaches = Counter(
            "remediator_sla_breaches_total",
            "Incidents past their acknowledgement or resolution due time, by priority and kind "
            "(acknowledge, resolve).",
            ["priority", "kind"],
            registry=r,
        )
        self.incidents_escalated = Counter(
            "remediator_incidents_escalated_total",
            "Incidents escalated because remediation failed or did not verify.",
            registry=r,
        )
        self.rules_last_reload_timestamp = Gauge(
            "remediator_rules_last_reload_success_timestamp_seconds",
            "Unix time of the last successful rule reload.",
            registry=r,
        )

    def record_known_duplicates(self, by_status: Mapping[str, int]) -> None:
        """Count re-deliveries answered from memory, without a transaction."""
        for status, count in by_status.items():
            self.alerts_received.labels(status).inc(count)
            self.alerts_duplicate.inc(count)

    def record_ingest(self, result: IngestResult) -> None:
        """Count what one committed transaction did."""
        for status, count in result.received.items():
            self.alerts_received.labels(status).inc(count)
        self.alerts_duplicate.inc(result.duplicates)
        self.alerts_stale.inc(result.stale)
        for priority, count in result.opened.items():
            if count:
                self.incidents_opened.labels(priority).inc(count)
        for rule, count in result.rule_matches.items():
            self.rule_matches.labels(rule).inc(count)
        self.intake_commit_alerts.observe(sum(result.received.values()))
        self.remediation_jobs_queued.inc(result.jobs_queued)
        self.remediation_jobs_cancelled.inc(result.jobs_cancelled)
