"""The service-quality report: MTTA, MTTR, auto-remediation, escalation, SLA breaches,
recurrence and per-rule effectiveness over the incidents opened in a period.

Definitions (the README's "Quality report" section repeats them for readers):

- MTTA: opened → first human response (acknowledged, or resolved by hand), over incidents
  that paged a human.
- MTTR: opened → resolved, over resolved incidents.
- auto-remediation rate: resolved by a verified remediation ÷ all resolved.
- escalation rate: handed to a human by automation (or paged because no rule matched) ÷ all.
- SLA breach rate per priority: incidents that breached their acknowledgement or resolution
  SLA ÷ incidents of that priority.
- recurrence rate: incidents that re-opened a recently resolved one (within
  `incidents.recurrence_window`) ÷ resolved incidents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Connection

from remediator.incidents.priority import Priority
from remediator.reports.stats import percentile, rate
from remediator.store import reports as store

UNMATCHED = "(no rule)"
# Remediation job states that mean the job ran its actions to an end.
_RAN = frozenset({"succeeded", "failed"})
_HELD_BACK = frozenset({"blocked", "rejected"})


class Durations(BaseModel):
    """Seconds: median and 90th percentile over `count` incidents (null when count is 0)."""

    count: int
    median_seconds: float | None
    p90_seconds: float | None


class PriorityQuality(BaseModel):
    priority: str
    incidents: int
    sla_breached: int
    sla_breach_rate: float | None
    ack_sla_breached: int
    resolve_sla_breached: int
    mttr: Durations


class RuleQuality(BaseModel):
    """How well one rule's automation works: `rule` is "(no rule)" for unmatched alerts."""

    rule: str
    incidents: int
    resolved: int
    auto_remediated: int
    auto_remediation_rate: float | None
    escalated: int
    escalation_rate: float | None
    remediations_run: int
    remediations_succeeded: int
    remediation_success_rate: float | None
    remediations_held_back: int
    mttr: Durations


class Bucket(BaseModel):
    """One slice of the period: an hour for periods up to two days, a day up to 92 days,
    else a week."""

    start: datetime
    opened: int
    auto_remediated: int
    escalated: int
    resolved: int
    mttr_median_seconds: float | None


class QualityReport(BaseModel):
    start: datetime
    end: datetime
    incidents: int
    resolved: int
    paged: int
    acknowledged: int
    mtta: Durations
    mttr: Durations
    auto_remediated: int
    auto_remediation_rate: float | None
    escalated: int
    escalation_rate: float | None
    recurred: int
    recurrence_rate: float | None
    sla_breached: int
    sla_breach_rate: float | None
    by_priority: list[PriorityQuality]
    by_rule: list[RuleQuality]
    bucket_seconds: int
    series: list[Bucket]


def build_report(conn: Connection, start: datetime, end: datetime) -> QualityReport:
    """The report over incidents opened in [start, end)."""
    facts = [_Fact.of(row) for row in store.incident_facts(conn, start, end)]
    jobs = _JobTally.of(store.job_counts(conn, start, end))
    every = _Tally.over(facts)
    bucket = _bucket_size(end - start)
    return QualityReport(
        start=start,
        end=end,
        incidents=every.count,
        resolved=len(every.resolve_times),
        paged=every.paged,
        acknowledged=len(every.ack_times),
        mtta=_durations(every.ack_times),
        mttr=_durations(every.resolve_times),
        auto_remediated=every.auto,
        auto_remediation_rate=rate(every.auto, len(every.resolve_times)),
        escalated=every.escalated,
        escalation_rate=rate(every.escalated, every.count),
        recurred=every.recurred,
        recurrence_rate=rate(every.recurred, len(every.resolve_times)),
        sla_breached=every.breached,
        sla_breach_rate=rate(every.breached, every.count),
        by_priority=[
            _priority(p.value, _Tally.over(f for f in facts if f.priority == p.value))
            for p in Priority
        ],
        by_rule=[_rule(name, tally, jobs) for name, tally in _by_rule(facts, jobs)],
        bucket_seconds=int(bucket.total_seconds()),
        series=_series(facts, start, end, bucket),
    )


@dataclass(slots=True)
class _Fact:
    priority: str
    rule: str
    opened: float
    ack_after: float | None
    resolved_after: float | None
    paged: bool
    escalated: bool
    resolution: str | None
    ack_breached: bool
    resolve_breached: bool
    recurred: bool

    @classmethod
    def of(cls, row: Any) -> _Fact:
        return cls(
            row.priority,
            row.rule if row.rule is not None else UNMATCHED,
            # julianday() arithmetic leaves float noise (10:00 reads as 09:59:59.99999).
            round(float(row.opened), 3),
            row.ack_after,
            row.resolved_after,
            bool(row.paged),
            bool(row.escalated),
            row.resolution,
            bool(row.ack_breached),
            bool(row.resolve_breached),
            bool(row.recurred),
        )


@dataclass(slots=True)
class _Tally:
    count: int = 0
    paged: int = 0
    escalated: int = 0
    auto: int = 0
    recurred: int = 0
    breached: int = 0
    ack_breached: int = 0
    resolve_breached: int = 0
    ack_times: list[float] = field(default_factory=list)
    resolve_times: list[float] = field(default_factory=list)

    @classmethod
    def over(cls, facts: Iterable[_Fact]) -> _Tally:
        tally = cls()
        for fact in facts:
            tally.add(fact)
        return tally

    def add(self, fact: _Fact) -> None:
        self.count += 1
        self.escalated += fact.escalated
        self.recurred += fact.recurred
        self.ack_breached += fact.ack_breached
        self.resolve_breached += fact.resolve_breached
        self.breached += fact.ack_breached or fact.resolve_breached
        if fact.paged:
            self.paged += 1
            if fact.ack_after is not None:
                self.ack_times.append(max(fact.ack_after, 0.0))
        if fact.resolved_after is not None:
            self.resolve_times.append(max(fact.resolved_after, 0.0))
            self.auto += fact.resolution == "automation"


@dataclass(slots=True)
class _JobTally:
    ran: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    succeeded: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    held_back: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def of(cls, rows: Iterable[Any]) -> _JobTally:
        tally = cls()
        for row in rows:
            if row.dry_run:
                continue  # a rehearsal says nothing about how well the fix works
            if row.state in _RAN:
                tally.ran[row.rule] += row.jobs
            if row.state == "succeeded":
                tally.succeeded[row.rule] += row.jobs
            if row.state in _HELD_BACK:
                tally.held_back[row.rule] += row.jobs
        return tally


def _durations(values: list[float]) -> Durations:
    ordered = sorted(values)
    return Durations(
        count=len(ordered),
        median_seconds=_round(percentile(ordered, 0.5)),
        p90_seconds=_round(percentile(ordered, 0.9)),
    )


def _round(value: float | None) -> float | None:
    # Stored times are exact to the microsecond; SQLite's julianday to about 0.1 ms.
    return None if value is None else round(value, 3)


def _priority(name: str, tally: _Tally) -> PriorityQuality:
    return PriorityQuality(
        priority=name,
        incidents=tally.count,
        sla_breached=tally.breached,
        sla_breach_rate=rate(tally.breached, tally.count),
        ack_sla_breached=tally.ack_breached,
        resolve_sla_breached=tally.resolve_breached,
        mttr=_durations(tally.resolve_times),
    )


def _by_rule(facts: Sequence[_Fact], jobs: _JobTally) -> list[tuple[str, _Tally]]:
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for fact in facts:
        tallies[fact.rule].add(fact)
    for rule in (*jobs.ran, *jobs.held_back):
        tallies.setdefault(rule, _Tally())
    return sorted(tallies.items(), key=lambda item: (-item[1].count, item[0]))


def _rule(name: str, tally: _Tally, jobs: _JobTally) -> RuleQuality:
    resolved = len(tally.resolve_times)
    ran, succeeded = jobs.ran.get(name, 0), jobs.succeeded.get(name, 0)
    return RuleQuality(
        rule=name,
        incidents=tally.count,
        resolved=resolved,
        auto_remediated=tally.auto,
        auto_remediation_rate=rate(tally.auto, resolved),
        escalated=tally.escalated,
        escalation_rate=rate(tally.escalated, tally.count),
        remediations_run=ran,
        remediations_succeeded=succeeded,
        remediation_success_rate=rate(succeeded, ran),
        remediations_held_back=jobs.held_back.get(name, 0),
        mttr=_durations(tally.resolve_times),
    )


def _bucket_size(span: timedelta) -> timedelta:
    if span <= timedelta(days=2):
        return timedelta(hours=1)
    return timedelta(days=1) if span <= timedelta(days=92) else timedelta(days=7)


def _series(
    facts: Sequence[_Fact], start: datetime, end: datetime, size: timedelta
) -> list[Bucket]:
    """Counts per bucket, aligned to whole hours / UTC days so charts line up across periods."""
    width = size.total_seconds()
    first = _floor(start, width)
    count = max(1, int(-(-(end.timestamp() - first) // width)))
    tallies = [_Tally() for _ in range(count)]
    for fact in facts:
        index = int((fact.opened - first) // width)
        if 0 <= index < count:
            tallies[index].add(fact)
    return [
        Bucket(
            start=datetime.fromtimestamp(first + i * width, UTC),
            opened=tally.count,
            auto_remediated=tally.auto,
            escalated=tally.escalated,
            resolved=len(tally.resolve_times),
            mttr_median_seconds=_round(percentile(sorted(tally.resolve_times), 0.5)),
        )
        for i, tally in enumerate(tallies)
    ]


def _floor(moment: datetime, width: float) -> float:
    seconds = moment.timestamp()
    return seconds - seconds % width
