"""The memory of committed deliveries: exact identities, least recently used evicted."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta

from remediator.intake.model import AlertEvent
from remediator.intake.recent import RecentDeliveries
from tests.unit.intake.test_committer import body


def event(n: int) -> AlertEvent:
    (only,) = body(n)
    return only


def test_only_the_exact_identity_is_known() -> None:
    recent = RecentDeliveries(10)
    firing = event(1)
    recent.remember([firing])
    resolved = dataclasses.replace(firing, status="resolved")
    next_occurrence = dataclasses.replace(firing, starts_at=firing.starts_at + timedelta(hours=1))
    unknown, known = recent.split([firing, resolved, next_occurrence, event(2)])
    assert unknown == [resolved, next_occurrence, event(2)]
    assert known == Counter(firing=1)


def test_the_least_recently_used_identity_is_forgotten_first() -> None:
    recent = RecentDeliveries(2)
    recent.remember([event(1), event(2)])
    recent.split([event(1)])  # seen again: now the most recent
    recent.remember([event(3)])
    assert len(recent) == 2
    unknown, known = recent.split([event(1), event(2), event(3)])
    assert unknown == [event(2)]
    assert known == Counter(firing=2)


def test_capacity_zero_remembers_nothing() -> None:
    recent = RecentDeliveries(0)
    recent.remember([event(1)])
    assert recent.split([event(1)]) == ([event(1)], Counter())
