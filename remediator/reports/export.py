"""The quality report as CSV: one indicator per row, so a spreadsheet can pivot it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from remediator.reports.quality import Durations, QualityReport

COLUMNS = ("metric", "scope", "value")
Row = tuple[str, str, float | int | None]


def to_csv(report: QualityReport) -> str:
    """`metric,scope,value` rows: scope is `all`, `priority=P1` or `rule=<name>`; durations
    in seconds, rates as fractions (0.25 = 25 %), an empty value where there was no data."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerow(("period_start", "all", report.start.isoformat()))
    writer.writerow(("period_end", "all", report.end.isoformat()))
    writer.writerows((m, s, "" if v is None else v) for m, s, v in _rows(report))
    return out.getvalue()


def _rows(report: QualityReport) -> Iterator[Row]:
    yield from _overall(report)
    for p in report.by_priority:
        scope = f"priority={p.priority}"
        yield "incidents", scope, p.incidents
        yield "sla_breached", scope, p.sla_breached
        yield "sla_breach_rate", scope, p.sla_breach_rate
        yield "ack_sla_breached", scope, p.ack_sla_breached
        yield "resolve_sla_breached", scope, p.resolve_sla_breached
        yield from _durations("mttr", scope, p.mttr)
    for r in report.by_rule:
        scope = f"rule={r.rule}"
        yield "incidents", scope, r.incidents
        yield "resolved", scope, r.resolved
        yield "auto_remediated", scope, r.auto_remediated
        yield "auto_remediation_rate", scope, r.auto_remediation_rate
        yield "escalated", scope, r.escalated
        yield "escalation_rate", scope, r.escalation_rate
        yield "remediations_run", scope, r.remediations_run
        yield "remediations_succeeded", scope, r.remediations_succeeded
        yield "remediation_success_rate", scope, r.remediation_success_rate
        yield "remediations_held_back", scope, r.remediations_held_back
        yield from _durations("mttr", scope, r.mttr)


def _overall(report: QualityReport) -> Iterator[Row]:
    for name in (
        "incidents",
        "resolved",
        "paged",
        "acknowledged",
        "auto_remediated",
        "auto_remediation_rate",
        "escalated",
        "escalation_rate",
        "recurred",
        "recurrence_rate",
        "sla_breached",
        "sla_breach_rate",
    ):
        yield name, "all", getattr(report, name)
    yield from _durations("mtta", "all", report.mtta)
    yield from _durations("mttr", "all", report.mttr)


def _durations(name: str, scope: str, durations: Durations) -> Iterator[Row]:
    yield f"{name}_median_seconds", scope, durations.median_seconds
    yield f"{name}_p90_seconds", scope, durations.p90_seconds
