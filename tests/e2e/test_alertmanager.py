"""A real Alertmanager 0.25 delivering to a real remediator process.

Alerts enter through Alertmanager's own API, as Prometheus and `amtool alert add` send them;
Alertmanager groups them (group_by [alertname, service], group_wait and group_interval 1s),
computes their fingerprints and notifies remediator's webhook. Nothing here builds a webhook
body: what remediator stores is whatever Alertmanager really sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import Alertmanager, Service, am_time, now_ms, parse_time, wait_for

pytestmark = pytest.mark.e2e


def crashloop(pod: str, starts_at: datetime, **extra: Any) -> dict[str, Any]:
    """A KubePodCrashLooping alert of the checkout service, as Prometheus would post it."""
    return {
        "labels": {
            "alertname": "KubePodCrashLooping",
            "namespace": "shop",
            "service": "checkout",
            "pod": pod,
            "severity": "warning",
        },
        "annotations": {"summary": f"Pod shop/{pod} is crash looping"},
        "startsAt": am_time(starts_at),
        "generatorURL": f"http://prometheus.example:9090/graph?pod={pod}",
        **extra,
    }


def ended(alert: dict[str, Any]) -> dict[str, Any]:
    """The same alert posted again with endsAt=now: Alertmanager resolves it."""
    return {**alert, "endsAt": am_time(now_ms())}


async def am_fingerprints(alertmanager: Alertmanager, **filters: str) -> dict[str, str]:
    """pod (or alertname) -> the fingerprint Alertmanager computed for that alert."""
    return {
        a["labels"].get("pod", a["labels"]["alertname"]): a["fingerprint"]
        for a in await alertmanager.alerts(**filters)
    }


async def notifications_all_delivered(service: Service, alertmanager: Alertmanager) -> float:
    """Every notification Alertmanager sent was answered 200 by remediator; how many."""
    assert (
        await alertmanager.metric("alertmanager_notifications_failed_total", integration="webhook")
        == 0
    ), "Alertmanager saw failed webhook deliveries"

    async def both() -> tuple[float, float]:
        sent = await alertmanager.metric("alertmanager_notifications_total", integration="webhook")
        ok = await service.metric("remediator_webhook_requests_total", code="200")
        return sent, ok

    sent, _ = await wait_for(both, lambda v: v[0] == v[1] > 0, "remediator to count every 200")
    assert await service.metric("remediator_webhook_requests_total", code="400") == 0
    assert await service.metric("remediator_webhook_requests_total", code="503") == 0
    return sent


async def test_two_pods_one_incident_then_the_source_resolves_it(
    service: Service, alertmanager: Alertmanager
) -> None:
    started = now_ms()
    first, second = (
        crashloop("checkout-7d9f8b-p9z1m", started),
        crashloop("checkout-7d9f8b-x2k4q", started),
    )
    await alertmanager.post_alerts([first, second])

    # (a) One Alertmanager group, one notification, ONE incident with both alerts.
    (listed,) = await wait_for(
        service.incidents,
        lambda page: len(page) == 1 and page[0]["alert_count"] == 2,
        "one incident with both crashloop alerts",
    )
    incident = await service.incident(listed["id"])
    assert incident["rule"] == "crashloop"
    assert incident["priority"] == incident["base_priority"] == "P2"  # the rule's, not severity
    assert incident["state"] == "open"
    assert incident["firing_count"] == 2
    assert incident["key"] == (
        'crashloop/alertname="KubePodCrashLooping",namespace="shop",service="checkout"'
    )
    assert incident["labels"] == {
        "alertname": "KubePodCrashLooping",
        "namespace": "shop",
        "service": "checkout",
        "severity": "warning",
    }
    assert incident["runbook"] == "kubectl -n {{ labels.namespace }} describe pod"
    fingerprints = await am_fingerprints(alertmanager, alertname="KubePodCrashLooping")
    assert len(fingerprints) == 2
    stored = {a["labels"]["pod"]: a for a in incident["alerts"]}
    assert {pod: a["fingerprint"] for pod, a in stored.items()} == fingerprints
    for alert in (first, second):
        row = stored[alert["labels"]["pod"]]
        assert row["status"] == "firing"
        assert row["labels"] == alert["labels"]
        assert row["annotations"] == alert["annotations"]
        assert row["generator_url"] == alert["generatorURL"]
        assert parse_time(row["starts_at"]) == started
        assert row["ends_at"] is None  # Alertmanager's zero endsAt means "still firing"
    kinds = [entry["kind"] for entry in incident["timeline"]]
    assert kinds[0] == "opened"
    assert kinds.count("opened") == 1
    assert kinds.count("log") == 2  # the rule's log action ran once per alert
    assert await service.metric("remediator_incidents_opened_total", priority="P2") == 1
    assert await service.metric("remediator_rule_matches_total", rule="crashloop") == 2

    # (b) One pod recovers: Alertmanager re-sends the changed group after group_interval,
    # with the other pod still firing in it. That one is a duplicate, not news.
    await alertmanager.post_alerts([ended(first)])
    incident = await wait_for(
        lambda: service.incident(listed["id"]),
        lambda i: i["firing_count"] == 1,
        "the first pod's alert to resolve",
    )
    assert incident["state"] == "open"
    assert incident["resolved_reason"] is None
    assert incident["alert_count"] == 2
    stored = {a["labels"]["pod"]: a for a in incident["alerts"]}
    assert stored[first["labels"]["pod"]]["status"] == "resolved"
    assert parse_time(stored[first["labels"]["pod"]]["ends_at"]) >= started
    assert stored[second["labels"]["pod"]]["status"] == "firing"
    assert [e["message"] for e in incident["timeline"] if e["kind"] == "alert_resolved"] == [
        f"alert KubePodCrashLooping ({fingerprints[first['labels']['pod']]}) resolved at source"
    ]
    await wait_for(
        lambda: service.metric("remediator_alerts_duplicate_total"),
        lambda v: v == 1,
        "the still-firing alert, delivered again, to count as a duplicate",
    )
    assert len(await service.incidents()) == 1  # the repeat opened nothing
    assert await service.metric("remediator_incidents_opened_total", priority="P2") == 1

    # The last pod recovers: the source resolved everything, so the incident is resolved.
    await alertmanager.post_alerts([ended(second)])
    incident = await wait_for(
        lambda: service.incident(listed["id"]),
        lambda i: i["state"] == "resolved",
        "the incident to resolve",
    )
    assert incident["firing_count"] == 0
    assert incident["resolved_reason"].startswith("source resolved")
    assert incident["resolved_at"] is not None
    assert {a["status"] for a in incident["alerts"]} == {"resolved"}
    changes = [e for e in incident["timeline"] if e["kind"] == "state_changed"]
    assert [(e["from_state"], e["to_state"]) for e in changes] == [("open", "resolved")]
    assert len(await service.incidents()) == 1
    assert await service.metric("remediator_incidents_open", state="open", priority="P2") == 0

    # Three notifications (2 firing; 1 resolved + 1 repeat; 1 resolved), all answered 200.
    assert await notifications_all_delivered(service, alertmanager) == 3
    assert await service.metric("remediator_alerts_received_total", status="firing") == 3
    assert await service.metric("remediator_alerts_received_total", status="resolved") == 2
    assert await service.metric("remediator_alerts_duplicate_total") == 1
    assert await service.metric("remediator_alerts_stale_total") == 0


async def test_an_alert_no_rule_matches_still_opens_an_incident(
    service: Service, alertmanager: Alertmanager
) -> None:
    started = now_ms()
    odd = {
        "labels": {
            "alertname": "CertificateExpiresSoon",
            "service": "gateway",
            "severity": "critical",
        },
        "annotations": {"summary": "The gateway certificate expires in 6 days"},
        "startsAt": am_time(started),
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=cert",
    }
    await alertmanager.post_alerts([odd])

    (listed,) = await wait_for(service.incidents, lambda page: len(page) == 1, "an incident")
    (fingerprint,) = (
        await am_fingerprints(alertmanager, alertname="CertificateExpiresSoon")
    ).values()
    incident = await service.incident(listed["id"])
    assert incident["rule"] is None
    assert incident["key"] == f"unmatched/fingerprint={fingerprint}"
    assert incident["priority"] == "P1"  # severity=critical, through the default severity map
    assert incident["state"] == "open"
    assert incident["title"] == "The gateway certificate expires in 6 days"
    assert incident["runbook"] is None
    assert [a["fingerprint"] for a in incident["alerts"]] == [fingerprint]
    (opened,) = incident["timeline"]
    assert opened["kind"] == "opened"
    assert "no rule matched alert CertificateExpiresSoon" in opened["message"]
    assert (await service.get_json("/api/v1/incidents", rule="crashloop"))["incidents"] == []

    assert await notifications_all_delivered(service, alertmanager) == 1
    assert await service.metric("remediator_alerts_received_total", status="firing") == 1
    assert await service.metric("remediator_incidents_opened_total", priority="P1") == 1
    assert await service.metric("remediator_incidents_open", state="open", priority="P1") == 1
