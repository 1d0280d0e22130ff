"""Escalation through the real app: a failed remediation pages PagerDuty, a human's
acknowledgement and resolution reach it too.

PagerDuty here is the local server of tests/integrations/pagerduty that enforces the Events
API v2 contract (paths, required fields, 202 bodies); the channel is the real plugin.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from remediator_integrations.pagerduty.webhooks import sign

from tests.api.test_remediation import (
    WEBHOOK,
    Deployer,
    deployer,
    disk_alert,
    incident_when,
    start,
)
from tests.integrations.pagerduty.conftest import PagerDuty, pagerduty
from tests.integrations.pagerduty.test_webhooks import webhook

__all__ = ["deployer", "pagerduty"]  # fixtures, shared

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, as PagerDuty requires
WEBHOOK_SECRET = "pd-webhook-signing-secret"
PD_EVENTS = "/api/v1/channels/pd-storage/events"


def rules(base: str) -> str:
    return f"""
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    runbook: https://runbooks.example.com/disk
    actions:
      - type: http
        url: "{base}/restart/db"
        json: {{service: db}}
        expect_status: [202]
    escalate: {{policy: storage}}
"""


def settings(pagerduty: PagerDuty) -> dict[str, Any]:
    return {
        "external_url": "https://remediator.example.com",
        "channels": {
            "pd-storage": {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": pagerduty.url}
        },
        "escalation": {
            "policies": {
                "storage": {"steps": [{"notify": ["pd-storage"]}, {"wait": "10m"}]},
            }
        },
    }


async def pd_events(pagerduty: PagerDuty, count: int, wait_s: float = 10) -> list[Any]:
    """The first `count` events PagerDuty accepted, once it has them."""
    try:
        async with asyncio.timeout(wait_s):
            while True:
                if len(pagerduty.accepted) >= count:
                    break
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"PagerDuty accepted {pagerduty.accepted}, expected {count} events")
    return pagerduty.accepted[:count]


async def escalated(
    aiohttp_client: Any, db_url: str, tmp_path: Path, base: str, pd: PagerDuty
) -> tuple[TestClient[Any, Any], Any]:
    client = await start(aiohttp_client, db_url, tmp_path, rules(base), **settings(pd))
    assert (await client.post(WEBHOOK, json=disk_alert("firing"))).status == 200
    return client, await incident_when(client, lambda i: i["state"] == "escalated")


async def test_a_failed_remediation_pages_with_what_was_tried(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    pagerduty: PagerDuty,
) -> None:
    service, base = deployer
    service.statuses = [404]
    client, incident = await escalated(aiohttp_client, db_url, tmp_path, base, pagerduty)
    [trigger] = await pd_events(pagerduty, 1)
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["dedup_key"] == f"remediator-{incident['id']}"
    assert trigger["payload"]["severity"] == "critical"  # severity=critical: P1
    details = trigger["payload"]["custom_details"]
    assert details["reason"].startswith("remediation failed")
    assert "404" in str(details)  # what automation tried, and how it ended
    links = [link["href"] for link in trigger.get("links", [])]
    assert f"https://remediator.example.com/api/v1/incidents/{incident['id']}" in links

    async def recorded() -> Any:
        detail = await (await client.get(f"/api/v1/incidents/{incident['id']}")).json()
        [chain] = detail["escalations"]
        return detail if chain["notifications"][0]["state"] == "sent" else None

    detail = None
    async with asyncio.timeout(10):
        while detail is None:
            detail = await recorded()
            await asyncio.sleep(0.05)
    [chain] = detail["escalations"]
    assert (chain["policy"], chain["state"]) == ("storage", "active")  # waiting 10m
    [sent] = chain["notifications"]
    assert (sent["channel"], sent["event"], sent["reference"]) == (
        "pd-storage",
        "trigger",
        trigger["dedup_key"],
    )
    kinds = [entry["kind"] for entry in detail["timeline"]]
    assert kinds.index("escalation_started") < kinds.index("notification_sent")


async def test_acknowledge_and_resolve_reach_pagerduty(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    pagerduty: PagerDuty,
) -> None:
    service, base = deployer
    service.statuses = [404]
    client, incident = await escalated(aiohttp_client, db_url, tmp_path, base, pagerduty)
    await pd_events(pagerduty, 1)
    path = f"/api/v1/incidents/{incident['id']}"
    assert (await client.post(f"{path}/ack", json={"comment": "on it"})).status == 200
    trigger, ack = await pd_events(pagerduty, 2)
    assert (ack["event_action"], ack["dedup_key"]) == ("acknowledge", trigger["dedup_key"])
    assert (await client.post(f"{path}/resolve", json={"reason": "disk grown"})).status == 200
    resolve = (await pd_events(pagerduty, 3))[2]
    assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", trigger["dedup_key"])
    await asyncio.sleep(0.3)  # no further page, although the chain's wait would end later
    assert len(pagerduty.accepted) == 3


async def test_an_escalated_incident_that_resolves_at_the_source_closes_the_page(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    pagerduty: PagerDuty,
) -> None:
    service, base = deployer
    service.statuses = [404]
    client, _ = await escalated(aiohttp_client, db_url, tmp_path, base, pagerduty)
    await pd_events(pagerduty, 1)
    assert (await client.post(WEBHOOK, json=disk_alert("resolved"))).status == 200
    trigger, resolve = await pd_events(pagerduty, 2)
    assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", trigger["dedup_key"])
    detail = await incident_when(client, lambda i: i["state"] == "resolved")
    assert detail["resolved_reason"].startswith("source resolved")
    assert detail["resolution"] == "alert"  # not fixed by automation, nor by a human
    assert detail["escalated_at"] is not None
    assert detail["paged_at"] == detail["escalations"][0]["started_at"]


async def test_a_signed_link_in_the_page_acknowledges_after_confirmation(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    pagerduty: PagerDuty,
) -> None:
    service, base = deployer
    service.statuses = [404]
    config = settings(pagerduty)
    config["escalation"]["link_secret"] = {"value": "s3cret-for-links"}
    client = await start(aiohttp_client, db_url, tmp_path, rules(base), **config)
    await client.post(WEBHOOK, json=disk_alert("firing"))
    incident = await incident_when(client, lambda i: i["state"] == "escalated")
    [trigger] = await pd_events(pagerduty, 1)
    [link] = [link["href"] for link in trigger["links"] if "/ack-link?" in link["href"]]
    path = link.removeprefix("https://remediator.example.com")
    assert path.startswith(f"/api/v1/incidents/{incident['id']}/ack-link?expires=")

    page = await client.get(path)  # a scanner or unfurler fetching the link changes nothing
    assert page.status == 200
    assert '<form method="post">' in await page.text()
    assert (await client.post(path.replace("signature=", "signature=0"))).status == 403
    other = path.replace(f"/incidents/{incident['id']}/", f"/incidents/{incident['id'] + 1}/")
    assert (await client.post(other)).status == 403  # signed for another incident
    assert (await incident_when(client, lambda i: True))["state"] == "escalated"

    done = await client.post(path)
    assert done.status == 200
    assert "acknowledged" in await done.text()
    detail = await incident_when(client, lambda i: i["state"] == "acknowledged")
    assert detail["acknowledged_by"] == "acknowledge link"
    ack = (await pd_events(pagerduty, 2))[1]
    assert ack["event_action"] == "acknowledge"
    assert (await client.post(path)).status == 409  # already acknowledged


def test_links_expire_and_need_a_secret(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta
    from urllib.parse import parse_qs, urlsplit

    from remediator.config import Config
    from remediator.escalation.links import acknowledge_url, link_problem

    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert acknowledge_url(Config(), 7, now) is None
    config = Config.model_validate(
        {"escalation": {"link_secret": {"value": "k"}, "link_ttl": "1h"}}
    )
    url = acknowledge_url(config, 7, now)
    assert url is not None
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert link_problem(config, 7, query["expires"], query["signature"], now) is None
    later = now + timedelta(hours=1, seconds=1)
    assert "expired" in (link_problem(config, 7, query["expires"], query["signature"], later) or "")
    assert "not enabled" in (link_problem(Config(), 7, query["expires"], "x", now) or "")


async def pd_webhook(
    client: TestClient[Any, Any], body: dict[str, Any], secret: str = WEBHOOK_SECRET
) -> Any:
    """POST a V3 webhook as PagerDuty does: the raw JSON bytes, signed with `secret`."""
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": sign(data, secret)}
    return await client.post(PD_EVENTS, data=data, headers=headers)


async def test_pagerduty_webhooks_acknowledge_and_resolve_the_incident(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    pagerduty: PagerDuty,
) -> None:
    service, base = deployer
    service.statuses = [404]
    config = settings(pagerduty)
    config["channels"]["pd-storage"]["webhook_secret"] = WEBHOOK_SECRET
    client = await start(aiohttp_client, db_url, tmp_path, rules(base), **config)
    await client.post(WEBHOOK, json=disk_alert("firing"))
    incident = await incident_when(client, lambda i: i["state"] == "escalated")
    [trigger] = await pd_events(pagerduty, 1)
    key = trigger["dedup_key"]
    assert key == f"remediator-{incident['id']}"
    assert trigger["payload"]["summary"].endswith(f" [{key}]")  # the incident's title
    # PagerDuty's incident as V3 reports it: our dedup_key as incident_key, our summary as title.
    acknowledged = webhook(incident_key=key, title=trigger["payload"]["summary"])

    forged = await pd_webhook(client, acknowledged, secret="not the secret")
    assert forged.status == 401
    assert (await incident_when(client, lambda i: True))["state"] == "escalated"

    answer = await pd_webhook(client, acknowledged)
    assert answer.status == 200
    assert await answer.json() == {"received": 1, "applied": 1}
    detail = await incident_when(client, lambda i: i["state"] == "acknowledged")
    assert detail["acknowledged_by"] == "Tenex Engineer (via pd-storage)"
    [chain] = detail["escalations"]
    assert chain["state"] == "stopped"  # no second page, although the wait would end
    again = await pd_webhook(client, acknowledged)  # PagerDuty delivers at least once
    assert await again.json() == {"received": 1, "applied": 0}

    # Without an incident_key (V3 may send null), the title's suffix still names it.
    resolved = webhook(
        "incident.resolved", incident_key=None, title=acknowledged["event"]["data"]["title"]
    )
    assert (await (await pd_webhook(client, resolved)).json())["applied"] == 1
    detail = await incident_when(client, lambda i: i["state"] == "resolved")
    assert detail["resolved_reason"] == "resolved by Tenex Engineer (via pd-storage)"
    assert detail["resolution"] == "human"
    await asyncio.sleep(0.3)
    assert [event["event_action"] for event in pagerduty.accepted] == [
        "trigger",
        "acknowledge",
        "resolve",
    ]


async def test_pages_go_out_when_the_incident_escalates_not_at_the_next_poll(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    pagerduty: PagerDuty,
) -> None:
    """With a 30 s poll, only wake-ups (job queued, escalated, acknowledged) can page in time."""
    service, base = deployer
    service.statuses = [404]
    config = settings(pagerduty) | {"remediation": {"poll_interval": "30s"}}
    client = await start(aiohttp_client, db_url, tmp_path, rules(base), **config)
    await client.post(WEBHOOK, json=disk_alert("firing"))
    [trigger] = await pd_events(pagerduty, 1, wait_s=10)
    incident_id = int(trigger["dedup_key"].removeprefix("remediator-"))
    await client.post(f"/api/v1/incidents/{incident_id}/ack", json={})
    ack = (await pd_events(pagerduty, 2, wait_s=10))[1]
    assert ack["event_action"] == "acknowledge"
