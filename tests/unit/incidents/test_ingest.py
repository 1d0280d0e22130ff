"""Alert deliveries become incidents: grouping, dedup, resolution, priority, recurrence.

Runs on SQLite and PostgreSQL, with rules loaded from YAML exactly as the service does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from remediator.config import Config
from remediator.incidents.ingest import IncidentIntake
from remediator.intake.model import WebhookBody, events_from
from remediator.rules import RuleSet, load_rule_set
from remediator.store import incidents as store
from remediator.store.database import Database
from remediator.store.schema import incidents
from tests.conftest import load_fixture

CRASHLOOP_RULES = """
rules:
  - name: crashloop
    match: ['alertname="KubePodCrashLooping"']
    incident:
      group_by: [alertname, namespace, service]
      title: "{{ labels.service }} pods crash looping in {{ labels.namespace }}"
    actions:
      - type: log
        message: "restart candidates: {{ labels.pod }}"
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    incident: {priority: P1}
"""

T0 = datetime(2026, 11, 21, 13, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


Factory = Callable[..., IncidentIntake]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def intake(
    database: Database, write_rules: Callable[[str], Path], clock: Clock, tmp_path: Path
) -> Factory:
    def make(rules: str = CRASHLOOP_RULES, **settings: Any) -> IncidentIntake:
        path = write_rules(rules)
        rule_set: RuleSet = load_rule_set([str(path)], tmp_path)
        config = Config.model_validate(
            {"database_url": database.url.render_as_string(False), **settings}
        )
        return IncidentIntake(database, lambda: rule_set, config, clock)

    return make


def events(body: dict[str, Any]) -> Any:
    return events_from(WebhookBody.model_validate(body))


async def all_incidents(db: Database) -> list[Any]:
    return await db.read(
        lambda conn: list(conn.execute(select(incidents).order_by(incidents.c.id)))
    )


async def timeline(db: Database, incident_id: int) -> list[Any]:
    return await db.read(lambda conn: store.timeline_of(conn, incident_id))


async def timeline_kinds(db: Database, incident_id: int) -> list[str]:
    return [e.kind for e in await timeline(db, incident_id)]


async def test_a_group_of_alerts_opens_one_prioritized_incident(
    intake: Factory, database: Database
) -> None:
    result = await intake().ingest(events(load_fixture("crashloop-two-pods-firing.json")))
    assert result.opened == {"P3": 1}  # severity=warning → P3
    assert result.rule_matches == {"crashloop": 2}
    (incident,) = await all_incidents(database)
    assert incident.rule == "crashloop"
    assert incident.state == "open"
    assert incident.title == "checkout pods crash looping in shop"
    assert (incident.alert_count, incident.firing_count) == (2, 2)
    assert incident.ack_due_at == T0 + timedelta(hours=4)
    assert incident.resolve_due_at == T0 + timedelta(hours=24)
    # Common labels only: the two pods differ, so `pod` is not an incident label.
    assert "pod" not in incident.labels
    assert incident.labels["service"] == "checkout"
    kinds = await timeline_kinds(database, incident.id)
    assert kinds == ["opened", "log", "alert_attached", "log"]


async def test_the_same_delivery_twice_changes_nothing(intake: Factory, database: Database) -> None:
    service = intake()
    body = load_fixture("crashloop-two-pods-firing.json")
    await service.ingest(events(body))
    again = await service.ingest(events(body))
    assert again.duplicates == 2
    assert not again.opened
    (incident,) = await all_incidents(database)
    assert len(await timeline_kinds(database, incident.id)) == 4


async def test_incident_resolves_only_when_every_alert_has(
    intake: Factory, database: Database, clock: Clock
) -> None:
    service = intake()
    await service.ingest(events(load_fixture("crashloop-two-pods-firing.json")))
    clock.advance(minutes=1)
    half = await service.ingest(events(load_fixture("crashloop-one-resolved-one-firing.json")))
    assert half.resolved_incidents == 0
    (incident,) = await all_incidents(database)
    assert (incident.state, incident.firing_count) == ("open", 1)

    body = load_fixture("crashloop-one-resolved-one-firing.json")
    body["alerts"][0].update(status="resolved", endsAt="2026-11-21T12:45:00Z")
    clock.advance(minutes=1)
    done = await service.ingest(events(body))
    assert done.resolved_incidents == 1
    (incident,) = await all_incidents(database)
    assert incident.state == "resolved"
    assert incident.resolved_at == clock.now
    assert incident.resolved_reason == "source resolved: all 2 alert(s) resolved"


async def test_unmatched_alerts_are_kept_as_incidents_without_rule(
    intake: Factory, database: Database
) -> None:
    body = load_fixture("diskfill-firing.json")
    body["alerts"][0]["labels"]["alertname"] = "SomethingNobodyWroteARuleFor"
    result = await intake().ingest(events(body))
    assert result.opened == {"P1": 1}  # severity=critical still decides priority
    (incident,) = await all_incidents(database)
    assert incident.rule is None
    assert incident.key == "unmatched/fingerprint=fcb0d5338dbe43d7"
    assert incident.title == "Disk on  will fill within 4 hours"  # the summary annotation


async def test_rule_priority_wins_over_severity(intake: Factory, database: Database) -> None:
    body = load_fixture("diskfill-firing.json")
    body["alerts"][0]["labels"]["severity"] = "info"
    await intake().ingest(events(body))
    (incident,) = await all_incidents(database)
    assert incident.priority == "P1"


async def test_many_alerts_raise_priority_one_level(intake: Factory, database: Database) -> None:
    service = intake(priorities={"raise_after_alerts": 2})
    result = await service.ingest(events(load_fixture("crashloop-two-pods-firing.json")))
    assert result.opened == {"P2": 1}  # counted once, at its final priority
    (incident,) = await all_incidents(database)
    assert (incident.base_priority, incident.priority) == ("P3", "P2")
    assert incident.ack_due_at == T0 + timedelta(hours=1)  # P2's SLA now applies
    assert "priority_raised" in await timeline_kinds(database, incident.id)


async def test_a_recurrence_within_the_window_is_linked(
    intake: Factory, database: Database, clock: Clock
) -> None:
    service = intake()
    firing = load_fixture("diskfill-firing.json")
    resolved = copy.deepcopy(firing)
    resolved["alerts"][0].update(status="resolved", endsAt="2026-11-21T12:50:00Z")
    await service.ingest(events(firing))
    clock.advance(minutes=10)
    await service.ingest(events(resolved))
    clock.advance(hours=2)
    again = copy.deepcopy(firing)
    again["alerts"][0]["startsAt"] = "2026-11-21T15:00:00Z"
    await service.ingest(events(again))
    first, second = await all_incidents(database)
    assert first.state == "resolved"
    assert second.state == "open"
    assert second.previous_incident_id == first.id
    assert second.recurrence_count == 1
    assert "recurrence" in await timeline_kinds(database, second.id)


async def test_recurrence_outside_the_window_is_not_linked(
    intake: Factory, database: Database, clock: Clock
) -> None:
    service = intake(incidents={"recurrence_window": "1h"})
    firing = load_fixture("diskfill-firing.json")
    resolved = copy.deepcopy(firing)
    resolved["alerts"][0]["status"] = "resolved"
    await service.ingest(events(firing))
    await service.ingest(events(resolved))
    clock.advance(hours=2)
    firing["alerts"][0]["startsAt"] = "2026-11-21T15:00:00Z"
    await service.ingest(events(firing))
    _, second = await all_incidents(database)
    assert second.previous_incident_id is None


async def test_a_late_firing_delivery_does_not_reopen(intake: Factory, database: Database) -> None:
    service = intake()
    firing = load_fixture("diskfill-firing.json")
    resolved = copy.deepcopy(firing)
    resolved["alerts"][0]["status"] = "resolved"
    await service.ingest(events(firing))
    await service.ingest(events(resolved))
    # A retry of an older notification: the same occurrence, still "firing".
    late = copy.deepcopy(firing)
    late["alerts"][0]["annotations"]["summary"] = "changed, so not a byte-identical duplicate"
    late["alerts"][0]["endsAt"] = "2026-11-21T12:41:00Z"
    result = await service.ingest(events(late))
    assert result.duplicates == 1  # identity is (fingerprint, startsAt, status)
    assert [i.state for i in await all_incidents(database)] == ["resolved"]


async def test_firing_after_resolved_in_one_body_is_stale(
    intake: Factory, database: Database
) -> None:
    body = load_fixture("diskfill-firing.json")
    resolved = copy.deepcopy(body["alerts"][0])
    resolved["status"] = "resolved"
    body["alerts"] = [resolved, body["alerts"][0]]
    result = await intake().ingest(events(body))
    assert result.stale == 1
    assert await all_incidents(database) == []


async def test_continue_lets_several_rules_open_incidents(
    intake: Factory, database: Database
) -> None:
    rules = """
rules:
  - name: audit
    match: ['severity=~"critical|warning"']
    continue: true
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
  - name: never
    match: ['alertname=~"Disk.*"']
"""
    result = await intake(rules).ingest(events(load_fixture("diskfill-firing.json")))
    assert result.rule_matches == {"audit": 1, "disk": 1}
    assert sorted(i.rule for i in await all_incidents(database)) == ["audit", "disk"]


async def test_without_group_by_each_alert_is_its_own_incident(
    intake: Factory, database: Database
) -> None:
    rules = "rules:\n  - name: crashloop\n    match: ['alertname=KubePodCrashLooping']\n"
    await intake(rules).ingest(events(load_fixture("crashloop-two-pods-firing.json")))
    keys = sorted(i.key for i in await all_incidents(database))
    assert keys == [
        "crashloop/fingerprint=095208cd0b53b80b",
        "crashloop/fingerprint=8af3412abf78efa4",
    ]


async def test_label_values_are_data_never_template_code(
    intake: Factory, database: Database
) -> None:
    body = load_fixture("crashloop-two-pods-firing.json")
    body["alerts"] = body["alerts"][:1]
    body["alerts"][0]["labels"]["pod"] = "{{ 7*7 }}{% raw %}"
    await intake().ingest(events(body))
    (incident,) = await all_incidents(database)
    entries = await timeline(database, incident.id)
    assert [e.message for e in entries if e.kind == "log"] == [
        "restart candidates: {{ 7*7 }}{% raw %}"
    ]


async def test_a_failing_title_template_is_recorded_not_fatal(
    intake: Factory, database: Database
) -> None:
    rules = """
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    incident: {title: "disk {{ labels.no_such_label }} filling"}
"""
    await intake(rules).ingest(events(load_fixture("diskfill-firing.json")))
    (incident,) = await all_incidents(database)
    assert incident.title == "Disk on  will fill within 4 hours"
    entries = await timeline(database, incident.id)
    error = next(e for e in entries if e.kind == "template_error")
    assert "no_such_label" in error.message


async def test_on_resolved_rules_act_when_the_alert_resolves(
    intake: Factory, database: Database
) -> None:
    rules = """
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
  - name: disk-cleanup-report
    on: resolved
    match: ['alertname="DiskWillFillIn4Hours"']
    actions:
      - {type: log, message: "{{ labels.instance }} recovered at {{ alert.ends_at }}"}
"""
    service = intake(rules)
    firing = load_fixture("diskfill-firing.json")
    first = await service.ingest(events(firing))
    assert first.rule_matches == {"disk": 1}  # resolved-only rules ignore firing alerts
    resolved = copy.deepcopy(firing)
    resolved["alerts"][0].update(status="resolved", endsAt="2026-11-21T12:50:00Z")
    result = await service.ingest(events(resolved))
    assert result.rule_matches == {"disk-cleanup-report": 1}
    (incident,) = await all_incidents(database)
    entries = await timeline(database, incident.id)
    log_entry = next(e for e in entries if e.kind == "log")
    assert log_entry.actor == "disk-cleanup-report"
    assert log_entry.message == "db-1:9100 recovered at 2026-11-21T12:50:00+00:00"
    assert entries[-1].to_state == "resolved"
