"""The guards as users meet them: the real intake queues jobs, the real runner decides and runs.

Runs on SQLite and PostgreSQL. The clock is the test's (cooldowns, rate windows, breaker
cool-offs and approval timeouts pass when the test says so); the runner polls every 50 ms.
The action is a `record` kind registered for these tests, run by an executor that records
each request and can be told to hold (until released) or to fail.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from sqlalchemy import select

from remediator.config import Config
from remediator.guards.breaker import BreakerPosition, BreakerState
from remediator.incidents.ingest import IncidentIntake
from remediator.intake.model import AlertEvent
from remediator.metrics import Metrics
from remediator.plugins import ActionFailed, ActionRequest, ActionResult, ActionSpec
from remediator.remediation.runner import RemediationRunner
from remediator.rules import load_rule_set
from remediator.rules.model import ACTION_MODELS, TemplateStr
from remediator.store import escalations as escalation_store
from remediator.store import guards as guard_store
from remediator.store import incidents as incident_store
from remediator.store import jobs as job_store
from remediator.store.database import Database
from remediator.store.schema import incidents

T0 = datetime(2026, 11, 21, 13, 0, tzinfo=UTC)
RULE = "disk"
ALERTNAME = "DiskWillFillIn4Hours"


class RecordAction(ActionSpec):
    """A test action kind: the executor below records it."""

    type: Literal["record"]
    note: TemplateStr


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class RecordingExecutor:
    """Runs `record` actions: records each request; holds an instance's action while told
    to (until released), and fails every action while `failing` is set."""

    def __init__(self) -> None:
        self.started: list[ActionRequest] = []
        self.failing = False
        self._held: dict[str, asyncio.Event] = {}

    def hold(self, instance: str) -> None:
        self._held[instance] = asyncio.Event()

    def release(self, instance: str) -> None:
        self._held.pop(instance).set()

    def ran(self) -> list[str]:
        """The instances whose actions started, in order."""
        return [request.labels["instance"] for request in self.started]

    async def run(self, request: ActionRequest) -> ActionResult:
        self.started.append(request)
        held = self._held.get(request.labels["instance"])
        if held is not None:
            await held.wait()
        if self.failing:
            raise ActionFailed("the restart did not help")
        return ActionResult(summary=f"recorded {request.params['note']}")

    def check(self, params: Mapping[str, Any]) -> list[str]:
        return []

    async def close(self) -> None:
        return None


def alert(
    instance: str,
    *,
    mount: str = "/",
    status: str = "firing",
    starts_at: datetime = T0 - timedelta(minutes=5),
    **labels: str,
) -> AlertEvent:
    """One disk alert of `instance` (each mount is its own alert, so its own incident)."""
    all_labels = {
        "alertname": ALERTNAME,
        "instance": instance,
        "mountpoint": mount,
        "service": "storage",
        "severity": "warning",
        **labels,
    }
    return AlertEvent(
        fingerprint=f"{instance}{mount}"[:64],
        status=status,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=1) if status == "resolved" else None,
        labels=all_labels,
        annotations={"summary": f"disk of {instance} fills"},
        generator_url="http://prometheus:9090/graph",
        receiver="remediator",
        group_key='{}:{alertname="DiskWillFillIn4Hours"}',
        external_url="http://alertmanager:9093",
    )


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 15) -> None:
    """Poll `check` until it holds; fail naming `what` after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


@dataclass
class Service:
    """The intake and the runner of one remediator over the test's database."""

    database: Database
    clock: Clock
    metrics: Metrics
    executor: RecordingExecutor
    intake: IncidentIntake
    runner: RemediationRunner
    started: bool = False

    def start(self) -> None:
        self.runner.start()
        self.started = True

    async def advance(self, **delta: float) -> None:
        """Move the clock, then let a claim that read the clock before the move finish, so
        a job queued next is decided at the new time."""
        self.clock.advance(**delta)
        await asyncio.sleep(0.06)

    async def fire(self, event: AlertEvent) -> int:
        """Deliver a firing alert; return the incident it is in."""
        await self.intake.ingest([event])
        key = f"{RULE}/fingerprint={event.fingerprint}"
        stmt = select(incidents.c.id).where(incidents.c.key == key).order_by(incidents.c.id.desc())
        latest = await self.database.read(lambda conn: conn.execute(stmt).scalars().first())
        assert latest is not None, f"no incident for {key}"
        incident_id = int(latest)
        return incident_id

    async def resolve(self, event: AlertEvent) -> None:
        await self.intake.ingest([event])

    async def job(self, incident_id: int) -> Any:
        """The incident's one job."""
        [job] = await self.database.read(lambda conn: job_store.jobs_of(conn, incident_id))
        return job

    async def settled(self, incident_id: int, *states: str) -> Any:
        """The incident's job once it reached one of `states`."""

        async def reached() -> bool:
            return bool((await self.job(incident_id)).state in states)

        await eventually(reached, f"the job of incident {incident_id} to be {' or '.join(states)}")
        return await self.job(incident_id)

    async def incident(self, incident_id: int) -> Any:
        return await self.database.read(lambda conn: incident_store.get_incident(conn, incident_id))

    async def in_state(self, incident_id: int, state: str) -> Any:
        async def reached() -> bool:
            return bool((await self.incident(incident_id)).state == state)

        await eventually(reached, f"incident {incident_id} to be {state}")
        return await self.incident(incident_id)

    async def timeline(self, incident_id: int, kind: str) -> list[str]:
        entries = await self.database.read(
            lambda conn: incident_store.timeline_of(conn, incident_id)
        )
        return [entry.message for entry in entries if entry.kind == kind]

    async def decision(self, incident_id: int) -> Any:
        """The incident's last guard_decision timeline entry."""
        entries = await self.database.read(
            lambda conn: incident_store.timeline_of(conn, incident_id)
        )
        return [entry for entry in entries if entry.kind == "guard_decision"][-1]

    async def escalation_reason(self, incident_id: int) -> str:
        """Why the incident was escalated, as its timeline says."""
        [why] = [
            entry.message
            for entry in await self.database.read(
                lambda conn: incident_store.timeline_of(conn, incident_id)
            )
            if entry.kind == "state_changed" and entry.to_state == "escalated"
        ]
        return str(why)

    async def chains(self, incident_id: int) -> list[Any]:
        return await self.database.read(
            lambda conn: escalation_store.escalations_of(conn, incident_id)
        )

    async def breaker(self) -> BreakerState:
        return await self.database.read(lambda conn: guard_store.breaker(conn, RULE))

    def decisions(self, guard: str, decision: str) -> float:
        labels = {"guard": guard, "rule": RULE, "decision": decision}
        value = self.metrics.registry.get_sample_value("remediator_guard_decisions_total", labels)
        return value or 0.0

    def breaker_opened(self) -> float:
        value = self.metrics.registry.get_sample_value(
            "remediator_circuit_breaker_opened_total", {"rule": RULE}
        )
        return value or 0.0


Start = Callable[..., Awaitable[Service]]


@pytest.fixture
async def service(
    database: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Start]:
    """Start a remediator whose one rule `disk` runs a `record` action under `guards`."""
    monkeypatch.setitem(ACTION_MODELS, "record", RecordAction)
    services: list[Service] = []

    async def start(guards: dict[str, Any], *, run: bool = True) -> Service:
        rule = {
            "name": RULE,
            "match": [f'alertname="{ALERTNAME}"'],
            "actions": [{"type": "record", "note": "clean up {{ labels.instance }}"}],
            "guards": guards,
        }
        (tmp_path / "rules.yml").write_text(json.dumps({"rules": [rule]}))  # JSON is YAML
        rules = load_rule_set([str(tmp_path / "rules.yml")], tmp_path)
        config = Config.model_validate(
            {
                "database_url": db_url,
                "channels": {"chat": {"type": "test"}},
                "escalation": {
                    "default_policy": "sre",
                    "policies": {"sre": {"steps": [{"notify": ["chat"]}]}},
                },
                # Verification outlasts every clock jump here: incidents stay verifying.
                "remediation": {"poll_interval": "50ms", "verify_resolved_within": "1d"},
            }
        )
        clock, metrics, executor = Clock(), Metrics(), RecordingExecutor()
        intake = IncidentIntake(database, lambda: rules, config, clock)
        runner = RemediationRunner(
            database, lambda: rules, config, {"record": executor}, metrics, clock
        )
        svc = Service(database, clock, metrics, executor, intake, runner)
        services.append(svc)
        if run:
            svc.start()
        return svc

    yield start
    for svc in services:
        if svc.started:
            await svc.runner.stop()


async def test_a_second_remediation_of_a_busy_target_is_blocked_and_escalated(
    service: Start,
) -> None:
    svc = await service({})  # concurrency 1 per target by default
    svc.executor.hold("db-1:9100")
    first = await svc.fire(alert("db-1:9100", mount="/var"))

    async def first_running() -> bool:
        return svc.executor.ran() == ["db-1:9100"]

    await eventually(first_running, "the first remediation to start")
    second = await svc.fire(alert("db-1:9100", mount="/srv"))

    job = await svc.settled(second, "blocked")
    why = "concurrency: target db-1:9100 already has 1 remediation(s) running (concurrency 1)"
    assert job.outcome == why
    incident = await svc.in_state(second, "escalated")
    assert await svc.escalation_reason(incident.id) == f"automation blocked: {why}"
    [chain] = await svc.chains(second)
    assert (chain.policy, chain.reason) == ("sre", f"automation blocked: {why}")
    decision = await svc.decision(second)
    assert decision.message == f"guards block job {job.id}: {why}"
    assert decision.data["verdict"] == "blocked"
    assert decision.data["decisions"][-1] == {
        "guard": "concurrency",
        "verdict": "blocked",
        "reason": why.removeprefix("concurrency: "),
    }
    assert svc.decisions("concurrency", "blocked") == 1
    assert svc.decisions("concurrency", "allowed") == 1
    assert (await svc.incident(first)).state == "remediating"  # the first one goes on

    svc.executor.release("db-1:9100")
    assert (await svc.settled(first, "succeeded")).outcome == "all actions succeeded"
    third = await svc.fire(alert("db-1:9100", mount="/tmp"))
    await svc.settled(third, "succeeded")
    assert svc.executor.ran() == ["db-1:9100", "db-1:9100"]  # the blocked one never ran
    assert svc.decisions("concurrency", "allowed") == 2


async def test_a_target_cools_down_after_its_remediation_ends(service: Start) -> None:
    svc = await service({"cooldown": "10m"})
    first = await svc.fire(alert("db-1:9100", mount="/var"))
    await svc.settled(first, "succeeded")  # ended at T0: the cooldown lasts until 13:10

    await svc.advance(minutes=9)
    again = await svc.fire(alert("db-1:9100", mount="/srv"))
    job = await svc.settled(again, "blocked")
    assert job.outcome == (
        "cooldown: target db-1:9100 was remediated by this rule at 2026-11-21T13:00:00+00:00; "
        "cooldown 10m lasts until 2026-11-21T13:10:00+00:00"
    )
    await svc.in_state(again, "escalated")
    other = await svc.fire(alert("db-2:9100"))  # another target is not cooling down
    await svc.settled(other, "succeeded")

    await svc.advance(minutes=1, seconds=1)
    after = await svc.fire(alert("db-1:9100", mount="/tmp"))
    await svc.settled(after, "succeeded")
    assert svc.executor.ran() == ["db-1:9100", "db-2:9100", "db-1:9100"]
    assert svc.decisions("cooldown", "blocked") == 1
    assert svc.decisions("cooldown", "allowed") == 3


async def test_a_rate_limit_per_service_slides_with_the_clock(service: Start) -> None:
    svc = await service({"rate_limit": {"limit": 2, "per": "1h", "key": "{{ labels.service }}"}})
    first = await svc.fire(alert("db-1:9100"))
    await svc.settled(first, "succeeded")  # at 13:00
    await svc.advance(minutes=30)
    second = await svc.fire(alert("db-2:9100"))
    await svc.settled(second, "succeeded")  # at 13:30

    await svc.advance(minutes=1)
    third = await svc.fire(alert("db-3:9100"))
    job = await svc.settled(third, "blocked")
    assert job.outcome == "rate_limit: rate limit reached: 2 of 2 per 1h for storage used"
    await svc.in_state(third, "escalated")
    web = await svc.fire(alert("web-1:9100", service="web"))  # its own count
    await svc.settled(web, "succeeded")

    await svc.advance(minutes=30)  # 14:01: the 13:00 one left the window, the 13:30 one not
    fourth = await svc.fire(alert("db-4:9100"))
    await svc.settled(fourth, "succeeded")
    fifth = await svc.fire(alert("db-5:9100"))
    assert (await svc.settled(fifth, "blocked")).outcome.startswith(
        "rate_limit: rate limit reached: 2 of 2 per 1h for storage"
    )
    assert svc.executor.ran() == ["db-1:9100", "db-2:9100", "web-1:9100", "db-4:9100"]
    assert svc.decisions("rate_limit", "blocked") == 2
    assert svc.decisions("rate_limit", "allowed") == 4


async def test_too_much_of_a_group_alerting_stops_automation_for_that_group(
    service: Start,
) -> None:
    blast = {"group": "{{ labels.cluster }}", "max_alerting": 2}
    svc = await service({"blast_radius": blast}, run=False)
    # Three hosts of eu-1 alert at once (more than 2); one host of us-1 alerts alone.
    eu = [await svc.fire(alert(f"eu-{n}:9100", cluster="eu-1")) for n in (1, 2, 3)]
    us = await svc.fire(alert("us-1:9100", cluster="us-1"))
    svc.start()

    for incident_id in eu:
        job = await svc.settled(incident_id, "blocked")
        assert job.outcome == (
            "blast_radius: 3 targets of group eu-1 are alerting (more than 2): too much is "
            "broken for automation to be safe"
        )
        await svc.in_state(incident_id, "escalated")
    await svc.settled(us, "succeeded")
    assert svc.executor.ran() == ["us-1:9100"]
    assert svc.decisions("blast_radius", "blocked") == 3


async def test_failures_open_the_breaker_and_a_trial_closes_or_reopens_it(
    service: Start,
) -> None:
    svc = await service({"circuit_breaker": {"failures": 2, "cool_off": "10m"}})
    svc.executor.failing = True
    for instance in ("db-1:9100", "db-2:9100"):
        failed = await svc.fire(alert(instance))
        assert (await svc.settled(failed, "failed")).outcome.endswith("the restart did not help")
        await svc.in_state(failed, "escalated")
    [opened] = await svc.timeline(failed, "breaker_opened")
    assert opened == (
        "circuit breaker of rule disk opened after 2 failed or unverified remediation(s) in a "
        "row: its automation stops until 2026-11-21T13:10:00+00:00, new incidents escalate"
    )
    assert svc.breaker_opened() == 1

    blocked = await svc.fire(alert("db-3:9100"))
    job = await svc.settled(blocked, "blocked")
    assert job.outcome.startswith(
        "circuit_breaker: open after 2 failed or unverified remediations in a row; automation "
        "of this rule resumes with a trial at 2026-11-21T13:10:00+00:00"
    )
    assert (await svc.escalation_reason(blocked)).startswith(
        "automation blocked: circuit_breaker: open"
    )

    await svc.advance(minutes=10)  # cool-off over: one trial, which fails again
    trial = await svc.fire(alert("db-4:9100"))
    await svc.settled(trial, "failed")
    await svc.in_state(trial, "escalated")
    assert len(await svc.timeline(trial, "breaker_opened")) == 1
    assert svc.breaker_opened() == 2
    reopened = await svc.breaker()
    assert (reopened.position, reopened.failures) == (BreakerPosition.open, 3)
    assert reopened.open_until == T0 + timedelta(minutes=20)

    await svc.advance(minutes=10)  # the next trial works
    svc.executor.failing = False
    trial_alert = alert("db-5:9100")
    good = await svc.fire(trial_alert)
    await svc.settled(good, "succeeded")
    await svc.in_state(good, "verifying")
    assert (await svc.breaker()).position is BreakerPosition.half_open
    waiting = await svc.fire(alert("db-6:9100"))  # only one trial at a time
    assert (await svc.settled(waiting, "blocked")).outcome == (
        "circuit_breaker: half-open: a trial remediation is running; its outcome decides"
    )
    await svc.resolve(alert("db-5:9100", status="resolved", starts_at=trial_alert.starts_at))
    resolved = await svc.in_state(good, "resolved")
    assert resolved.resolved_reason.startswith("auto-remediated")
    assert await svc.breaker() == BreakerState()  # closed, no failures in a row

    after = await svc.fire(alert("db-7:9100"))
    await svc.settled(after, "succeeded")
    assert svc.executor.ran() == ["db-1:9100", "db-2:9100", "db-4:9100", "db-5:9100", "db-7:9100"]
    assert svc.breaker_opened() == 2
    assert svc.decisions("circuit_breaker", "blocked") == 2


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("{{ labels.host }}", "a guard template failed"),
        ("{{ labels.host | default('') }}", "the target rendered empty: refusing"),
    ],
)
async def test_a_target_that_renders_to_nothing_is_never_acted_on(
    service: Start, target: str, why: str
) -> None:
    svc = await service({"target": target})
    incident = await svc.fire(alert("db-1:9100"))  # no `host` label
    job = await svc.settled(incident, "blocked")
    assert job.outcome.startswith(f"target: {why}")
    assert (await svc.escalation_reason(incident)).startswith(f"automation blocked: target: {why}")
    assert svc.decisions("target", "blocked") == 1
    await asyncio.sleep(0.2)  # several polls
    assert svc.executor.ran() == []


async def test_the_kill_switch_blocks_every_remediation_until_resumed(service: Start) -> None:
    svc = await service({})
    now = svc.clock()
    await svc.database.write(
        lambda conn: guard_store.pause(conn, "alice", "database failover drill", None, now)
    )
    paused = await svc.fire(alert("db-1:9100"))
    job = await svc.settled(paused, "blocked")
    assert job.outcome == "pause: automation is paused by alice: database failover drill"
    assert (await svc.escalation_reason(paused)) == (
        "automation blocked: pause: automation is paused by alice: database failover drill"
    )
    assert svc.decisions("pause", "blocked") == 1

    await svc.advance(minutes=1)
    assert await svc.database.write(lambda conn: guard_store.resume(conn, "alice", svc.clock()))
    resumed = await svc.fire(alert("db-2:9100"))
    await svc.settled(resumed, "succeeded")
    assert svc.executor.ran() == ["db-2:9100"]  # the blocked job stays blocked
    assert (await svc.job(paused)).state == "blocked"


async def awaiting_approval(svc: Service) -> tuple[int, Any]:
    """Fire an alert of a rule with `approval: required`: its job waits for a human."""
    incident_id = await svc.fire(alert("db-1:9100"))
    job = await svc.settled(incident_id, "awaiting_approval")
    assert job.approval_due_at == T0 + timedelta(hours=1)
    decision = await svc.decision(incident_id)
    assert decision.message == (
        f"job {job.id} needs approval: approval: waits up to 1h for an operator's approval"
    )
    assert decision.data["verdict"] == "pending"
    assert svc.decisions("approval", "pending") == 1
    [chain] = await svc.chains(incident_id)
    assert chain.state == "active"
    assert chain.reason == (
        f"approval needed: job {job.id} of rule disk waits up to 1h for an operator to "
        "approve or reject it"
    )
    assert (await svc.incident(incident_id)).state == "open"
    return incident_id, job


async def test_an_approved_remediation_runs(service: Start) -> None:
    svc = await service({"approval": "required"})
    incident_id, job = await awaiting_approval(svc)
    await asyncio.sleep(0.2)  # several polls: it keeps waiting
    assert svc.executor.ran() == []

    approved = await svc.runner.approve(job.id, "alice")
    assert (approved.state, approved.approved_by) == ("queued", "alice")
    assert (await svc.settled(incident_id, "succeeded")).approved_by == "alice"
    assert svc.executor.ran() == ["db-1:9100"]
    await svc.in_state(incident_id, "verifying")
    [chain] = await svc.chains(incident_id)
    assert (chain.state, chain.stop_reason) == ("stopped", "remediation approved by alice")
    assert svc.decisions("approval", "allowed") == 1
    with pytest.raises(ValueError, match="not awaiting approval"):
        await svc.runner.approve(job.id, "bob")


async def test_a_rejected_remediation_escalates(service: Start) -> None:
    svc = await service({"approval": "required"})
    incident_id, job = await awaiting_approval(svc)

    rejected = await svc.runner.reject(job.id, "bob", "not during the sale")
    assert (rejected.state, rejected.outcome) == (
        "rejected",
        "approval rejected by bob: not during the sale",
    )
    await svc.in_state(incident_id, "escalated")
    assert await svc.escalation_reason(incident_id) == (
        "remediation not run: approval rejected by bob: not during the sale"
    )
    # The chain that asked for approval goes on paging, with the reason as it is now.
    [chain] = await svc.chains(incident_id)
    assert (chain.state, chain.reason) == (
        "active",
        "remediation not run: approval rejected by bob: not during the sale",
    )
    await asyncio.sleep(0.2)
    assert svc.executor.ran() == []


async def test_an_approval_not_given_in_time_escalates(service: Start) -> None:
    svc = await service({"approval": "required"})
    incident_id, job = await awaiting_approval(svc)

    await svc.advance(hours=1, seconds=1)
    timed_out = await svc.settled(incident_id, "rejected")
    assert timed_out.outcome == "no operator approved or rejected it in time"
    await svc.in_state(incident_id, "escalated")
    assert (await svc.escalation_reason(incident_id)).startswith(
        "remediation not run: approval timed out"
    )
    [chain] = await svc.chains(incident_id)
    assert chain.state == "active"
    assert chain.reason.startswith("remediation not run: approval timed out")
    assert svc.executor.ran() == []
    with pytest.raises(ValueError, match="not awaiting approval"):
        await svc.runner.approve(job.id, "alice")


async def test_a_flapping_alert_is_escalated_instead_of_remediated(service: Start) -> None:
    svc = await service({"flapping": {"max_flaps": 2, "window": "1h"}}, run=False)
    for flap in range(3):  # fires and resolves three times: more than max_flaps
        occurrence = T0 - timedelta(minutes=30 - flap * 10)
        await svc.fire(alert("db-1:9100", starts_at=occurrence))
        await svc.advance(minutes=2)
        await svc.resolve(alert("db-1:9100", status="resolved", starts_at=occurrence))
        await svc.advance(minutes=2)
    incident_id = await svc.fire(alert("db-1:9100", starts_at=T0))
    svc.start()

    job = await svc.settled(incident_id, "blocked")
    assert job.outcome == (
        "flapping: the alert is flapping: it resolved 3 times within 1h (more than 2); "
        "escalated instead of chased"
    )
    assert (await svc.escalation_reason(incident_id)).startswith("automation blocked: flapping:")
    assert svc.decisions("flapping", "blocked") == 1
    assert svc.executor.ran() == []  # the earlier jobs were cancelled as their alert resolved
