"""Property tests: the rate limiter and the circuit breaker against small reference models.

The rate limiter runs as the runner uses it: the real intake queues a job per alert in a real
SQLite database (a fresh copy of a migrated file per example), and the guard gate decides
each claimed job in the claim transaction, recording what it lets through. The reference is
a list of allowed times per key: a request is allowed iff fewer than `limit` of them lie in
(now - per, now].

The circuit breaker is checked as pure transitions (`admit`, `record`) against a model
written from the documented behaviour: K failures in a row open it for `cool_off`; then one
trial runs; a failed trial reopens it, any success closes it and resets the count; a trial
that never reports lets the next remediation through as a new trial after another `cool_off`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from remediator.config import Config
from remediator.guards.breaker import BreakerPosition, BreakerState, admit, record
from remediator.guards.decide import Verdict
from remediator.guards.gate import GuardGate
from remediator.guards.spec import CircuitBreaker
from remediator.incidents.ingest import IncidentIntake
from remediator.intake.model import AlertEvent
from remediator.metrics import Metrics
from remediator.plugins import ActionSpec
from remediator.rules import load_rule_set
from remediator.rules.model import ACTION_MODELS, TemplateStr
from remediator.store import guards as guard_store
from remediator.store import jobs as job_store
from remediator.store import migrate
from remediator.store.database import Database

T0 = datetime(2026, 11, 21, 13, 0, tzinfo=UTC)
KEYS = ("search", "storage")


class RecordAction(ActionSpec):
    """A test action kind, so the rule queues remediation jobs (nothing runs them here)."""

    type: Literal["record"]
    note: TemplateStr


# -- the rate limiter ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A migrated SQLite file, copied for each example (migrating each time is slow); the
    `record` action kind is known while the module's tests run."""

    async def upgrade(url: str) -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    path = tmp_path_factory.mktemp("rate") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(ACTION_MODELS, "record", RecordAction)
        yield path


Op = tuple[str, Any]  # ("wait", seconds) or ("ask", rate key)


def rate_ops(per: int) -> st.SearchStrategy[list[Op]]:
    """Steps of a clock move (mostly onto a window's edge: exactly `per` after an earlier
    request) and a few requests for one key."""
    edges = st.sampled_from([per, per, per // 2, per - 1, per + 1, 1, 0])
    wait = st.one_of(edges, edges, edges, st.integers(0, 2 * per))
    step = st.tuples(wait, st.sampled_from(KEYS), st.integers(1, 3))

    def flatten(steps: list[tuple[int, str, int]]) -> list[Op]:
        ops: list[Op] = []
        for seconds, key, asks in steps:
            ops.append(("wait", seconds))
            ops.extend([("ask", key)] * asks)
        return ops

    return st.lists(step, min_size=1, max_size=10).map(flatten)


@dataclass
class RateCase:
    limit: int
    per: int  # seconds
    ops: list[Op]


@st.composite
def rate_cases(draw: st.DrawFn) -> RateCase:
    per = draw(st.sampled_from([10, 60, 3600]))
    return RateCase(draw(st.integers(1, 3)), per, draw(rate_ops(per)))


def rate_alert(n: int, key: str, now: datetime) -> AlertEvent:
    """Request n: a new alert on its own host (so only the rate limit can refuse it)."""
    return AlertEvent(
        fingerprint=f"alert-{n:04d}",
        status="firing",
        starts_at=now,
        ends_at=None,
        labels={"alertname": "Busy", "instance": f"host-{n}", "service": key},
        annotations={},
        generator_url="",
        receiver="remediator",
        group_key="{}",
        external_url="",
    )


async def run_rate_case(url: str, rules_path: Path, case: RateCase) -> None:
    rule = {
        "name": "busy",
        "match": ['alertname="Busy"'],
        "actions": [{"type": "record", "note": "{{ labels.instance }}"}],
        "guards": {
            "rate_limit": {
                "limit": case.limit,
                "per": f"{case.per}s",
                "key": "{{ labels.service }}",
            },
            "circuit_breaker": False,
            "flapping": False,
        },
    }
    rules_path.write_text(json.dumps({"rules": [rule]}))  # JSON is YAML
    rules = load_rule_set([str(rules_path)], rules_path.parent)
    config = Config.model_validate({"database_url": url})
    now = T0
    db = Database(url)
    intake = IncidentIntake(db, lambda: rules, config, lambda: now)
    gate = GuardGate(config, lambda: rules, Metrics())
    allowed_at: dict[str, list[datetime]] = {key: [] for key in KEYS}  # the reference model
    seen: list[str] = []

    def claim_and_decide(conn: Connection) -> tuple[Verdict, str | None]:
        [job] = job_store.claim(conn, "property", 1, now, now + timedelta(minutes=1))
        guard_store.lock(conn)
        outcome = gate.decide(conn, job, "P3", now).outcome
        return outcome.verdict, None if outcome.deciding is None else outcome.deciding.guard

    try:
        for n, (kind, value) in enumerate(case.ops):
            if kind == "wait":
                now += timedelta(seconds=int(value))
                seen.append(f"+{value}s")
                continue
            key = str(value)
            await intake.ingest([rate_alert(n, key, now)])
            verdict, guard = await db.write(claim_and_decide)
            since = now - timedelta(seconds=case.per)
            expected = sum(t > since for t in allowed_at[key]) < case.limit
            seen.append(f"{key}@{(now - T0).total_seconds():g}s→{verdict.value}")
            assert (verdict is Verdict.allowed) == expected, (
                f"limit {case.limit} per {case.per}s: {' '.join(seen)}; model says "
                f"{'allowed' if expected else 'blocked'}"
            )
            if expected:
                allowed_at[key].append(now)
            else:
                assert guard == "rate_limit"
    finally:
        await db.dispose()


@settings(max_examples=40, deadline=None)
@given(case=rate_cases())
def test_the_rate_limit_allows_exactly_what_a_sliding_window_allows(
    migrated: Path, case: RateCase
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "remediator.db"
        shutil.copyfile(migrated, path)
        url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(run_rate_case(url, Path(scratch) / "rules.yml", case))


# -- the circuit breaker ------------------------------------------------------------------


@dataclass
class BreakerModel:
    """The documented behaviour, kept apart from the implementation's representation."""

    failures_to_open: int
    cool_off: timedelta
    mode: str = "closed"  # closed | open | trial
    in_a_row: int = 0
    open_until: datetime | None = None
    trial_until: datetime | None = None

    def request(self, now: datetime) -> bool:
        if self.mode == "closed":
            return True
        if self.mode == "open":
            assert self.open_until is not None
            if now < self.open_until:
                return False  # stopped for the cool-off
        elif self.mode == "trial":
            assert self.trial_until is not None
            if now < self.trial_until:
                return False  # one trial at a time, until it reports or another cool-off
        self.mode, self.trial_until = "trial", now + self.cool_off
        return True

    def outcome(self, succeeded: bool, now: datetime) -> None:
        if succeeded:
            self.mode, self.in_a_row, self.open_until, self.trial_until = "closed", 0, None, None
            return
        self.in_a_row += 1
        if self.mode == "trial" or self.in_a_row >= self.failures_to_open:
            self.mode, self.open_until, self.trial_until = "open", now + self.cool_off, None


POSITION = {"closed": BreakerPosition.closed, "open": BreakerPosition.open}
POSITION["trial"] = BreakerPosition.half_open


@dataclass
class BreakerCase:
    failures: int
    cool_off: int  # seconds
    ops: list[Op]  # ("wait", seconds), ("request", None), ("outcome", succeeded)


@st.composite
def breaker_cases(draw: st.DrawFn) -> BreakerCase:
    """Mostly failures (so the breaker opens), clock moves mostly onto a cool-off's edge."""
    cool_off = draw(st.sampled_from([60, 300, 600]))
    edges = st.sampled_from([cool_off, cool_off - 1, cool_off + 1, cool_off // 2, 1, 0])
    wait = st.tuples(st.just("wait"), st.one_of(edges, edges, st.integers(0, 2 * cool_off)))
    request = st.tuples(st.just("request"), st.none())
    outcome = st.tuples(st.just("outcome"), st.sampled_from([False, False, True]))
    ops = draw(st.lists(st.one_of(wait, request, request, outcome, outcome), max_size=60))
    return BreakerCase(draw(st.integers(1, 4)), cool_off, ops)


EDGES = BreakerCase(  # open exactly until the cool-off ends; a silent trial; a failed trial
    1,
    60,
    [
        ("request", None),
        ("outcome", False),  # opens until 60s
        ("wait", 59),
        ("request", None),  # refused
        ("wait", 1),
        ("request", None),  # the trial, at 60s exactly
        ("wait", 59),
        ("request", None),  # refused: the trial runs
        ("wait", 1),
        ("request", None),  # the trial never reported: a new trial
        ("outcome", False),  # it failed: open again until 180s
        ("wait", 60),
        ("request", None),
        ("outcome", True),  # closed
    ],
)


@settings(max_examples=500, deadline=None)
@given(case=breaker_cases())
@example(case=EDGES)
def test_the_circuit_breaker_follows_its_documented_transitions(case: BreakerCase) -> None:
    failures, cool_off_s, ops = case.failures, case.cool_off, case.ops
    config = CircuitBreaker(failures=failures, cool_off=timedelta(seconds=cool_off_s))
    model = BreakerModel(failures, config.cool_off)
    state = BreakerState()
    now = T0
    admitted = 0  # remediations let through whose outcome is not in yet
    for kind, value in ops:
        if kind == "wait":
            now += timedelta(seconds=value)
        elif kind == "request":
            admission = admit(state, config, now)
            assert admission.allowed == model.request(now), (state, now)
            if admission.allowed:
                state = admission.state
                admitted += 1
            else:
                assert admission.state == state  # a refusal changes nothing
        elif admitted:  # the outcome of the last remediation let through
            admitted -= 1
            state = record(state, config, bool(value), now)
            model.outcome(bool(value), now)
        assert state.position is POSITION[model.mode]
        assert state.failures == model.in_a_row
        if model.mode == "open":
            assert state.open_until == model.open_until
        if model.mode == "trial":
            assert state.trial_until == model.trial_until


def test_an_unreported_trial_lets_the_next_remediation_through_after_another_cool_off() -> None:
    config = CircuitBreaker(failures=1, cool_off=timedelta(minutes=10))
    opened = record(BreakerState(), config, False, T0)
    assert not admit(opened, config, T0 + timedelta(minutes=9, seconds=59)).allowed
    trial = admit(opened, config, T0 + timedelta(minutes=10))
    assert trial.allowed
    assert trial.state.position is BreakerPosition.half_open
    assert not admit(trial.state, config, T0 + timedelta(minutes=19)).allowed  # one at a time
    again = admit(trial.state, config, T0 + timedelta(minutes=20))  # the trial never reported
    assert again.allowed
    assert again.state.trial_until == T0 + timedelta(minutes=30)


def test_without_a_breaker_configured_failures_are_only_counted() -> None:
    state = BreakerState()
    for _ in range(10):
        state = record(state, None, False, T0)
    assert (state.position, state.failures) == (BreakerPosition.closed, 10)
    assert record(state, None, True, T0) == BreakerState()
