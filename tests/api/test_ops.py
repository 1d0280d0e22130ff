"""Health, readiness, rule listing and reload: a bad rule file never replaces good rules."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.api.conftest import ClientFactory
from tests.api.test_webhook import metric
from tests.conftest import load_fixture


async def test_health_and_readiness(make_client: ClientFactory) -> None:
    client = await make_client()
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    assert await (await client.get("/readyz")).json() == {
        "status": "ready",
        "automation": {"state": "active"},
    }


async def test_rules_are_listed_with_their_source(make_client: ClientFactory) -> None:
    client = await make_client()
    body = await (await client.get("/api/v1/rules")).json()
    assert [r["name"] for r in body["rules"]] == ["crashloop", "disk"]
    crash = body["rules"][0]
    assert crash["match"] == ['alertname="KubePodCrashLooping"']
    assert crash["group_by"] == ["alertname", "namespace", "service"]
    assert crash["actions"] == ["log"]
    assert crash["source"].endswith("rules.yml:3")
    assert body["last_reload_ok"] is True


async def test_bad_reload_keeps_old_rules(make_client: ClientFactory, rules_file: Path) -> None:
    client = await make_client()
    assert await metric(client, "remediator_rules_last_reload_success") == 1
    good = rules_file.read_text()
    rules_file.write_text(good + "  - name: broken\n    match: ['alertname=~\"(\"']\n")
    response = await client.post("/-/reload")
    assert response.status == 400
    body = await response.json()
    assert body["ok"] is False
    assert body["rules"] == 2
    (problem,) = body["problems"]
    assert problem.endswith(
        "rules.yml:13: rules[2].match[0]: invalid matcher 'alertname=~\"(\"': "
        "invalid regular expression: missing ), unterminated subpattern at position 0"
    )
    assert await metric(client, "remediator_rules_last_reload_success") == 0
    listed = await (await client.get("/api/v1/rules")).json()
    assert [r["name"] for r in listed["rules"]] == ["crashloop", "disk"]
    assert listed["last_reload_ok"] is False

    rules_file.write_text(good.replace("name: disk", "name: disk-full"))
    assert (await client.post("/-/reload")).status == 200
    assert await metric(client, "remediator_rules_last_reload_success") == 1
    listed = await (await client.get("/api/v1/rules")).json()
    assert [r["name"] for r in listed["rules"]] == ["crashloop", "disk-full"]


async def test_a_queue_no_worker_claims_shows_as_the_oldest_queued_age(
    make_client: ClientFactory, rules_file: Path
) -> None:
    rules_file.write_text(
        """
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    actions:
      - {type: http, url: "http://127.0.0.1:9/never"}
"""
    )
    # An intake-only replica: jobs wait in the database for a worker elsewhere.
    client = await make_client(remediation={"workers": 0})
    assert await metric(client, "remediator_remediation_jobs_oldest_queued_seconds") == 0
    body = load_fixture("diskfill-firing.json")
    assert (await client.post("/api/v1/webhooks/alertmanager", json=body)).status == 200
    await asyncio.sleep(0.05)
    assert await metric(client, "remediator_remediation_jobs_oldest_queued_seconds") > 0
