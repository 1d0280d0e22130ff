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
- per rule: the above per rule, and the remediation jobs queued in the period: how many ran
  (succeeded or failed; dry runs left out), how many succeeded, how many guards held back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Connection

from remediator.incidents.priority import Priority
from remediator.reports.stats import percentile, rate
from remediator.store import reports as store
from remediator.store.database import Database

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


async def build_report(db: Database, start: datetime, end: datetime) -> QualityReport:
    """The report over incidents opened in [start, end), read in one snapshot."""
    width = int(_bucket_size(end - start).total_seconds())
    index = _bucket_index(start, width)

    def read(conn: Connection) -> QualityReport:
        groups = _Groups.of(store.outcomes(conn, start, end, width), index)
        jobs = _JobTally.of(store.job_counts(conn, start, end))
        return _assemble(start, end, width, groups, groups.times, groups.responses, jobs)

    return await db.read(read)


def _assemble(
    start: datetime,
    end: datetime,
    width: int,
    counts: _Groups,
    times: _ResolveTimes,
    responses: list[float],
    jobs: _JobTally,
) -> QualityReport:
    every = counts.every
    return QualityReport(
        start=start,
        end=end,
        incidents=every.incidents,
        resolved=every.resolved,
        paged=every.paged,
        acknowledged=len(responses),
        mtta=_durations(responses),
        mttr=_durations(times.every),
        auto_remediated=every.auto,
        auto_remediation_rate=rate(every.auto, every.resolved),
        escalated=every.escalated,
        escalation_rate=rate(every.escalated, every.incidents),
        recurred=every.recurred,
        recurrence_rate=rate(every.recurred, every.resolved),
        sla_breached=every.breached,
        sla_breach_rate=rate(every.breached, every.incidents),
        by_priority=[
            _priority(p.value, counts.by_priority.get(p.value, _Tally()), times.by_priority)
            for p in Priority
        ],
        by_rule=_rules(counts, times, jobs),
        bucket_seconds=width,
        series=_series(counts, times, start, end, width),
    )


@dataclass(slots=True)
class _Tally:
    """Counts of one group of incidents (all, a priority, a rule or a bucket)."""

    incidents: int = 0
    escalated: int = 0
    recurred: int = 0
    ack_breached: int = 0
    resolve_breached: int = 0
    breached: int = 0
    paged: int = 0
    resolved: int = 0
    auto: int = 0

    def add(self, values: tuple[int, ...]) -> None:
        self.incidents += values[0]
        self.escalated += values[1]
        self.recurred += values[2]
        self.ack_breached += values[3]
        self.resolve_breached += values[4]
        self.breached += values[5]
        self.paged += values[6]
        self.resolved += values[7]
        self.auto += values[8]


@dataclass(slots=True)
class _ResolveTimes:
    """Seconds from opening to resolution, grouped as the report shows them."""

    every: list[float] = field(default_factory=list)
    by_priority: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    by_rule: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    by_bucket: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))


@dataclass(slots=True)
class _Groups:
    """The store's groups of incidents folded into the report's: all, per priority, per rule,
    per bucket; with their resolution times, and the response times of all."""

    every: _Tally = field(default_factory=_Tally)
    by_priority: dict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    by_rule: dict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    by_bucket: dict[int, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    times: _ResolveTimes = field(default_factory=_ResolveTimes)
    responses: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, found: Iterable[store.Outcomes], index: Callable[[str], int]) -> _Groups:
        groups = cls()
        times = groups.times
        for group in found:
            rule = group.rule if group.rule is not None else UNMATCHED
            bucket = index(group.bucket)
            for tally in (
                groups.every,
                groups.by_priority[group.priority],
                groups.by_rule[rule],
                groups.by_bucket[bucket],
            ):
                tally.add(group.counts)
            for seconds in (
                times.every,
                times.by_priority[group.priority],
                times.by_rule[rule],
                times.by_bucket[bucket],
            ):
                seconds.extend(group.resolve_seconds)
            groups.responses.extend(group.response_seconds)
        return groups


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


def _priority(name: str, tally: _Tally, times: dict[str, list[float]]) -> PriorityQuality:
    return PriorityQuality(
        priority=name,
        incidents=tally.incidents,
        sla_breached=tally.breached,
        sla_breach_rate=rate(tally.breached, tally.incidents),
        ack_sla_breached=tally.ack_breached,
        resolve_sla_breached=tally.resolve_breached,
        mttr=_durations(times.get(name, [])),
    )


def _rules(counts: _Groups, times: _ResolveTimes, jobs: _JobTally) -> list[RuleQuality]:
    names = set(counts.by_rule) | set(jobs.ran) | set(jobs.held_back)
    tallies = {name: counts.by_rule.get(name, _Tally()) for name in names}
    ordered = sorted(tallies.items(), key=lambda item: (-item[1].incidents, item[0]))
    return [_rule(name, tally, times.by_rule.get(name, []), jobs) for name, tally in ordered]


def _rule(name: str, tally: _Tally, resolve_times: list[float], jobs: _JobTally) -> RuleQuality:
    ran, succeeded = jobs.ran.get(name, 0), jobs.succeeded.get(name, 0)
    return RuleQuality(
        rule=name,
        incidents=tally.incidents,
        resolved=tally.resolved,
        auto_remediated=tally.auto,
        auto_remediation_rate=rate(tally.auto, tally.resolved),
        escalated=tally.escalated,
        escalation_rate=rate(tally.escalated, tally.incidents),
        remediations_run=ran,
        remediations_succeeded=succeeded,
        remediation_success_rate=rate(succeeded, ran),
        remediations_held_back=jobs.held_back.get(name, 0),
        mttr=_durations(resolve_times),
    )


def _bucket_size(span: timedelta) -> timedelta:
    if span <= timedelta(days=2):
        return timedelta(hours=1)
    return timedelta(days=1) if span <= timedelta(days=92) else timedelta(days=7)


def _bucket_index(start: datetime, width: int) -> Callable[[str], int]:
    """Maps the store's bucket keys (UTC hours or days) to chart buckets of `width` seconds
    counted from `start` floored to a whole bucket; a key is parsed once."""
    first = start.timestamp() - start.timestamp() % width

    @cache
    def index(key: str) -> int:
        return int((store.bucket_start(key).timestamp() - first) // width)

    return index


def _series(
    counts: _Groups, times: _ResolveTimes, start: datetime, end: datetime, width: int
) -> list[Bucket]:
    """Counts per bucket, aligned to whole hours / UTC days so charts line up across periods."""
    first = start.timestamp() - start.timestamp() % width
    buckets = max(1, int(-(-(end.timestamp() - first) // width)))
    series = []
    for index in range(buckets):
        tally = counts.by_bucket.get(index, _Tally())
        median = percentile(sorted(times.by_bucket.get(index, [])), 0.5)
        series.append(
            Bucket(
                start=datetime.fromtimestamp(first + index * width, UTC),
                opened=tally.incidents,
                auto_remediated=tally.auto,
                escalated=tally.escalated,
                resolved=tally.resolved,
                mttr_median_seconds=_round(median),
            )
        )
    return series
