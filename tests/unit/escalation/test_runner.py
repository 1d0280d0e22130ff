"""Escalation chains on a real database: steps, waits, repeats, retries, acknowledgement.

The channel here is a recording one that answers as it is told; the channel plugins are
tested against their services' contracts in tests/integrations/. The clock is the test's:
waits and retry delays pass when the test says so, and the runner polls every 50 ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator.config import Config
from remediator.escalation.policy import choose_policy
from remediator.escalation.runner import EscalationRunner, _retry_delay
from remediator.incidents.ingest import IncidentIntake
from remediator.incidents.operations import IncidentOperations
from remediator.intake.model import WebhookBody, events_from
from remediator.metrics import Metrics
from remediator.plugins import DeliveryFailed, DeliveryResult, Notification
from remediator.rules import load_rule_set
from remediator.store import escalations as store
from remediator.store import incidents as incident_store
from remediator.store.database import Database
from tests.conftest import load_fixture

T0 = datetime(2026, 11, 21, 13, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class RecordingChannel:
    """Delivers into a list; `failures` are raised first, one per send."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.failures: list[DeliveryFailed] = []

    async def send(self, notification: Notification) -> DeliveryResult:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(notification)
        return DeliveryResult(f"delivered {notification.event}", reference="ref-1")

    async def close(self) -> None:
        return None


POLICY = {
    "steps": [{"notify": ["chat"]}, {"wait": "10m"}, {"notify": ["pager"], "to": ["oncall@x"]}],
}


def config(db_url: str, policy: dict[str, Any] = POLICY) -> Config:
    return Config.model_validate(
        {
            "database_url": db_url,
            "channels": {"chat": {"type": "test"}, "pager": {"type": "test"}},
            "escalation": {"unmatched_policy": "sre", "policies": {"sre": policy}},
            "remediation": {"poll_interval": "50ms"},
        }
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def channels() -> dict[str, RecordingChannel]:
    return {"chat": RecordingChannel(), "pager": RecordingChannel()}


Start = Callable[..., Any]


@pytest.fixture
async def escalate(
    database: Database,
    db_url: str,
    tmp_path: Path,
    clock: Clock,
    channels: dict[str, RecordingChannel],
) -> AsyncIterator[Start]:
    """Open an incident of an alert no rule matches: it escalates with policy `sre`."""
    runners: list[EscalationRunner] = []

    async def start(policy: dict[str, Any] = POLICY) -> int:
        settings = config(db_url, policy)
        (tmp_path / "rules.yml").write_text("rules: []\n")
        rules = load_rule_set([str(tmp_path / "rules.yml")], tmp_path)
        intake = IncidentIntake(database, lambda: rules, settings, clock)
        body = WebhookBody.model_validate(load_fixture("diskfill-firing.json"))
        await intake.ingest(events_from(body))
        runner = EscalationRunner(database, settings, channels, Metrics(), clock)
        runner.start()
        runners.append(runner)
        [incident] = await database.read(lambda conn: incident_store.list_incidents(conn))
        return int(incident.id)

    yield start
    for runner in runners:
        await runner.stop()


async def eventually(check: Callable[[], Any], what: str, within: float = 15.0) -> None:
    """Poll `check` until it holds; fail naming `what` after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def notifications(database: Database, incident_id: int) -> list[Any]:
    return await database.read(lambda conn: store.notifications_of(conn, incident_id))


async def kinds(database: Database, incident_id: int) -> list[str]:
    entries = await database.read(lambda conn: incident_store.timeline_of(conn, incident_id))
    return [entry.kind for entry in entries]


async def test_steps_notify_then_wait_then_notify(
    escalate: Start, database: Database, clock: Clock, channels: dict[str, RecordingChannel]
) -> None:
    incident_id = await escalate()

    async def chat_paged() -> bool:
        return len(channels["chat"].sent) == 1

    await eventually(chat_paged, "the first step")
    page = channels["chat"].sent[0]
    assert (page.event, page.dedup_key) == ("trigger", f"remediator-{incident_id}")
    assert page.reason.startswith("no rule matched alert DiskWillFillIn4Hours")
    assert page.incident_url.endswith(f"/api/v1/incidents/{incident_id}")
    await asyncio.sleep(0.3)  # several polls: the wait holds
    assert channels["pager"].sent == []
    clock.advance(minutes=10)

    async def pager_paged() -> bool:
        return len(channels["pager"].sent) == 1

    await eventually(pager_paged, "the step after the wait")
    assert channels["pager"].sent[0].recipients == ("oncall@x",)

    async def both_recorded() -> bool:
        rows = await notifications(database, incident_id)
        return [row.state for row in rows] == ["sent", "sent"]

    await eventually(both_recorded, "both deliveries recorded")
    recorded = await kinds(database, incident_id)
    for kind in ["escalation_started", "escalation_step", "escalation_wait", "notification_sent"]:
        assert kind in recorded
    assert recorded[-1] in {"escalation_done", "notification_sent"}


async def test_an_acknowledgement_stops_the_chain_and_tells_who_was_paged(
    escalate: Start, database: Database, clock: Clock, channels: dict[str, RecordingChannel]
) -> None:
    incident_id = await escalate()

    async def chat_paged() -> bool:
        return len(channels["chat"].sent) == 1

    await eventually(chat_paged, "the first step")
    await IncidentOperations(database, clock).acknowledge(incident_id, "alice", "on it")

    async def chat_told() -> bool:
        return len(channels["chat"].sent) == 2

    await eventually(chat_told, "the acknowledgement")
    ack = channels["chat"].sent[1]
    assert (ack.event, ack.reason) == ("acknowledge", "acknowledged by alice: on it")
    clock.advance(hours=1)
    await asyncio.sleep(0.3)
    assert channels["pager"].sent == []  # the next step never came
    [chain] = await database.read(lambda conn: store.escalations_of(conn, incident_id))
    assert (chain.state, chain.stop_reason) == ("stopped", "acknowledged by alice: on it")


async def test_retryable_failures_wait_for_retry_after_then_succeed(
    escalate: Start, database: Database, clock: Clock, channels: dict[str, RecordingChannel]
) -> None:
    channels["chat"].failures = [DeliveryFailed("429 rate limited", retryable=True, retry_after=90)]
    incident_id = await escalate()

    async def tried_once() -> bool:
        rows = await notifications(database, incident_id)
        return bool(rows) and rows[0].attempts == 1

    await eventually(tried_once, "the first attempt")
    [row] = await notifications(database, incident_id)
    assert row.state == "pending"
    assert row.next_at - clock.now >= timedelta(seconds=90)  # Retry-After honoured
    await asyncio.sleep(0.3)
    assert channels["chat"].sent == []
    clock.advance(seconds=91)

    async def delivered() -> bool:
        return len(channels["chat"].sent) == 1

    await eventually(delivered, "the retry")

    async def recorded() -> bool:  # the channel has it; its row follows in a moment
        [row] = await notifications(database, incident_id)
        return bool(row.state == "sent")

    await eventually(recorded, "the retry recorded")
    [row] = await notifications(database, incident_id)
    assert (row.state, row.attempts, row.reference) == ("sent", 2, "ref-1")
    messages = [
        entry.message
        for entry in await database.read(lambda c: incident_store.timeline_of(c, incident_id))
    ]
    assert any("attempt 1: failed: 429 rate limited (will retry in" in m for m in messages)


async def test_a_permanent_failure_is_not_retried(
    escalate: Start, database: Database, channels: dict[str, RecordingChannel]
) -> None:
    channels["chat"].failures = [DeliveryFailed("404 no_service")]
    incident_id = await escalate()

    async def failed() -> bool:
        rows = await notifications(database, incident_id)
        return bool(rows) and rows[0].state == "failed"

    await eventually(failed, "the failure")
    [row] = await notifications(database, incident_id)
    assert (row.attempts, row.summary) == (1, "404 no_service")


async def test_a_repeating_policy_pages_again_after_its_wait(
    escalate: Start, clock: Clock, channels: dict[str, RecordingChannel]
) -> None:
    await escalate({"steps": [{"notify": ["chat"]}, {"wait": "5m"}], "repeat": 2})

    async def paged(times: int) -> bool:
        return len(channels["chat"].sent) == times

    await eventually(lambda: paged(1), "the first cycle")
    for cycle in (2, 3):
        clock.advance(minutes=5)
        await eventually(lambda c=cycle: paged(c), f"cycle {cycle}")  # type: ignore[misc]
    clock.advance(minutes=5)
    await asyncio.sleep(0.3)
    assert len(channels["chat"].sent) == 3  # repeat: 2 means three cycles, then done


def test_the_policy_is_the_rules_else_the_prioritys_else_the_default() -> None:
    settings = Config.model_validate(
        {
            "channels": {"c": {"type": "test"}},
            "escalation": {
                "default_policy": "d",
                "unmatched_policy": "u",
                "by_priority": {"P1": "p1"},
                "policies": {n: {"steps": [{"notify": ["c"]}]} for n in ("d", "u", "p1", "r")},
            },
        }
    ).escalation
    assert choose_policy(settings, "r", "P1", matched=True) == "r"
    assert choose_policy(settings, None, "P1", matched=True) == "p1"
    assert choose_policy(settings, None, "P3", matched=True) == "d"
    assert choose_policy(settings, None, "P1", matched=False) == "u"


def test_retry_delays_back_off_and_respect_retry_after() -> None:
    assert 0 <= _retry_delay(1, None) <= 4
    assert _retry_delay(1, 120) == 120
    assert all(_retry_delay(n, None) <= 300 for n in range(1, 20))


SLOW_POLICY = {"steps": [{"notify": ["chat"]}, {"wait": "1h"}, {"notify": ["pager"]}]}


async def test_an_sla_breach_is_recorded_once_and_cuts_the_wait_short(
    escalate: Start, database: Database, clock: Clock, channels: dict[str, RecordingChannel]
) -> None:
    incident_id = await escalate(SLOW_POLICY)  # critical: P1, acknowledge within 15m

    async def paged(name: str) -> bool:
        return len(channels[name].sent) == 1

    await eventually(lambda: paged("chat"), "the first step")
    clock.advance(minutes=16)
    await eventually(lambda: paged("pager"), "the step after the breach, not after 1h")
    await asyncio.sleep(0.3)  # more sweeps: still one breach
    recorded = await kinds(database, incident_id)
    assert recorded.count("sla_breached") == 1
    [incident] = await database.read(lambda conn: incident_store.list_incidents(conn))
    assert incident.ack_breached_at is not None
    assert incident.resolve_breached_at is None


async def test_a_breach_switches_to_the_on_breach_policy(
    database: Database,
    db_url: str,
    tmp_path: Path,
    clock: Clock,
    channels: dict[str, RecordingChannel],
) -> None:
    policies = {
        "sre": {"steps": [{"notify": ["chat"]}, {"wait": "1h"}], "on_breach": "major"},
        "major": {"steps": [{"notify": ["pager"]}]},
    }
    settings = Config.model_validate(
        {
            "database_url": db_url,
            "channels": {"chat": {"type": "test"}, "pager": {"type": "test"}},
            "escalation": {"unmatched_policy": "sre", "policies": policies},
            "remediation": {"poll_interval": "50ms"},
        }
    )
    (tmp_path / "rules.yml").write_text("rules: []\n")
    rules = load_rule_set([str(tmp_path / "rules.yml")], tmp_path)
    intake = IncidentIntake(database, lambda: rules, settings, clock)
    await intake.ingest(
        events_from(WebhookBody.model_validate(load_fixture("diskfill-firing.json")))
    )
    runner = EscalationRunner(database, settings, channels, Metrics(), clock)
    runner.start()
    try:
        await eventually(lambda: _sent(channels["chat"], 1), "the first policy")
        clock.advance(minutes=16)
        await eventually(lambda: _sent(channels["pager"], 1), "the on_breach policy")
    finally:
        await runner.stop()
    [incident] = await database.read(lambda conn: incident_store.list_incidents(conn))
    chains = await database.read(lambda conn: store.escalations_of(conn, incident.id))
    assert [(c.policy, c.state) for c in chains] == [("sre", "stopped"), ("major", "done")]
    assert "switching to policy major" in (chains[0].stop_reason or "")


async def _sent(channel: RecordingChannel, count: int) -> bool:
    return len(channel.sent) == count


async def test_a_page_waiting_for_its_retry_is_cancelled_when_a_human_acknowledges(
    escalate: Start, database: Database, clock: Clock, channels: dict[str, RecordingChannel]
) -> None:
    channels["chat"].failures = [DeliveryFailed("503", retryable=True, retry_after=60)]
    incident_id = await escalate()

    async def waiting_for_retry() -> bool:
        rows = await notifications(database, incident_id)
        return bool(rows) and rows[0].attempts == 1 and rows[0].state == "pending"

    await eventually(waiting_for_retry, "the failed first attempt")
    await IncidentOperations(database, clock).acknowledge(incident_id, "bob", None)
    clock.advance(minutes=20)  # past the retry and the wait
    await asyncio.sleep(0.4)
    assert channels["chat"].sent == []  # neither the page nor an "acknowledged" for it
    assert channels["pager"].sent == []
    [row] = await notifications(database, incident_id)
    assert row.state == "cancelled"
    assert row.summary == "cancelled: acknowledged by bob"


async def test_resolve_waits_for_the_page_in_flight(
    escalate: Start, database: Database, clock: Clock, channels: dict[str, RecordingChannel]
) -> None:
    """A paging system never hears "resolved" before the page it resolves."""
    incident_id = await escalate()
    await eventually(lambda: _sent(channels["chat"], 1), "the page")
    [trigger] = await notifications(database, incident_id)

    def in_flight(conn: Any) -> None:  # as if a sender were still delivering it
        store.update_notification(conn, trigger.id, {"state": "sending"})

    await database.write(in_flight)
    await IncidentOperations(database, clock).resolve(incident_id, "carol", "fixed")
    await asyncio.sleep(0.4)  # several polls: the resolve waits
    assert [n.event for n in channels["chat"].sent] == ["trigger"]

    def delivered(conn: Any) -> None:
        store.update_notification(conn, trigger.id, {"state": "sent"})

    await database.write(delivered)
    await eventually(lambda: _sent(channels["chat"], 2), "the resolve")
    resolve = channels["chat"].sent[1]
    assert (resolve.event, resolve.reason) == ("resolve", "resolved by carol: fixed")


async def test_the_next_page_carries_what_fixed_the_last_incident(
    escalate: Start,
    database: Database,
    db_url: str,
    tmp_path: Path,
    clock: Clock,
    channels: dict[str, RecordingChannel],
) -> None:
    first = await escalate()
    await eventually(lambda: _sent(channels["chat"], 1), "the first page")
    assert channels["chat"].sent[0].known_resolutions == ()
    await IncidentOperations(database, clock).resolve(first, "dana", "grew the volume by 50G")
    clock.advance(minutes=5)
    body = load_fixture("diskfill-firing.json")
    for alert in body["alerts"]:
        alert["startsAt"] = "2026-11-21T13:04:00Z"  # the same alert, firing again later
    rules = load_rule_set([str(tmp_path / "rules.yml")], tmp_path)
    intake = IncidentIntake(database, lambda: rules, config(db_url), clock)
    await intake.ingest(events_from(WebhookBody.model_validate(body)))
    await eventually(lambda: _triggers(channels["chat"], 2), "the second incident's page")
    pages = [n for n in channels["chat"].sent if n.event == "trigger"]
    assert pages[1].incident_id != first
    [known] = pages[1].known_resolutions
    assert (known.note, known.resolved_by, known.incident_id, known.same_key) == (
        "grew the volume by 50G",
        "dana",
        first,
        True,
    )


async def _triggers(channel: RecordingChannel, count: int) -> bool:
    return len([n for n in channel.sent if n.event == "trigger"]) == count


class HangingChannel(RecordingChannel):
    """A channel whose service never answers (until the runner gives up on it)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = 0

    async def send(self, notification: Notification) -> DeliveryResult:
        self.started += 1
        await asyncio.sleep(3600)
        return await super().send(notification)


BOTH_AT_ONCE = {"steps": [{"notify": ["chat", "pager"]}]}


async def test_a_hanging_channel_does_not_hold_up_another(
    escalate: Start, channels: dict[str, RecordingChannel]
) -> None:
    hanging = HangingChannel()
    channels["chat"] = hanging
    await escalate(BOTH_AT_ONCE)
    await eventually(lambda: _sent(channels["pager"], 1), "the other channel's page")
    assert hanging.started == 1
    assert hanging.sent == []


async def test_a_send_cut_off_by_a_crash_is_sent_again_by_another_process_once(
    database: Database,
    db_url: str,
    tmp_path: Path,
    clock: Clock,
) -> None:
    """The outbox survives a crash: the lapsed lease hands the page to the next runner."""
    settings = config(db_url, BOTH_AT_ONCE)
    (tmp_path / "rules.yml").write_text("rules: []\n")
    rules = load_rule_set([str(tmp_path / "rules.yml")], tmp_path)
    intake = IncidentIntake(database, lambda: rules, settings, clock)
    await intake.ingest(
        events_from(WebhookBody.model_validate(load_fixture("diskfill-firing.json")))
    )
    hanging, pager = HangingChannel(), RecordingChannel()
    crashed = EscalationRunner(
        database, settings, {"chat": hanging, "pager": pager}, Metrics(), clock
    )
    crashed.start()
    await eventually(lambda: _started(hanging), "the send that will be cut off")
    await eventually(lambda: _sent(pager, 1), "the other page")

    async def pager_recorded() -> bool:  # else it too would be in flight at the crash
        rows = await database.read(lambda conn: store.notifications_of(conn, 1))
        return any(row.channel == "pager" and row.state == "sent" for row in rows)

    await eventually(pager_recorded, "the other page recorded")
    await crashed.stop()  # like a crash: the chat row stays `sending`, under its lease

    chat, pager_after = RecordingChannel(), RecordingChannel()
    successor = EscalationRunner(
        database, settings, {"chat": chat, "pager": pager_after}, Metrics(), clock
    )
    successor.start()
    try:
        await asyncio.sleep(0.3)
        assert chat.sent == []  # the lease still holds
        clock.advance(seconds=31)
        await eventually(lambda: _sent(chat, 1), "the page after the lease lapsed")
        await asyncio.sleep(0.3)
    finally:
        await successor.stop()
    assert len(chat.sent) == 1
    assert pager_after.sent == []  # what was sent is not sent again


async def _started(channel: HangingChannel) -> bool:
    return channel.started == 1
