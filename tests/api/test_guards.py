"""Safety guards through the real app, as operators see them: the guards listing, the kill
switch (pause / resume), approvals by API and by signed link, and closing a circuit breaker.

Pages go to the local PagerDuty contract server of tests/integrations/pagerduty; the http
action calls the local deployer of tests/api/test_remediation.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from remediator.app import create_app
from remediator.config import Config
from remediator.metrics import Metrics
from tests.api.test_escalation import ROUTING_KEY, pd_events
from tests.api.test_remediation import WEBHOOK, Deployer, deployer, disk_alert, incident_when
from tests.api.test_webhook import metric
from tests.integrations.pagerduty.conftest import PagerDuty, pagerduty

__all__ = ["deployer", "pagerduty"]  # fixtures, shared

VIEWER, OPERATOR = "view-token", "oncall-token"
AUTH = {
    "tokens": [
        {"name": "dash", "token": VIEWER, "role": "viewer"},
        {"name": "oncall", "token": OPERATOR, "role": "operator"},
    ]
}
EXTERNAL = "https://remediator.example.com"

# dry_run: the guards decide as for any job; the http action is rendered, never sent.
RULES = """
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    dry_run: true
    actions:
      - {type: http, url: "http://127.0.0.1:9/restart/{{ labels.service }}", json: {}}
  - name: crashloop
    match: ['alertname="KubePodCrashLooping"']
    dry_run: true
    guards:
      concurrency: 2
      rate_limit: "5 per 1h"
      circuit_breaker: {failures: 2, cool_off: 10m}
      flapping: false
    actions:
      - {type: http, url: "http://127.0.0.1:9/restart/{{ labels.pod }}", json: {}}
  - name: note-only
    match: ['alertname="InfoOnly"']
    actions:
      - {type: log, message: "info {{ labels.instance }}"}
  - name: watchdog
    match: ['alertname="Watchdog"']
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


OPS = bearer(OPERATOR)


async def serve(
    aiohttp_client: Any, db_url: str, tmp_path: Path, rules: str, **settings: Any
) -> TestClient[Any, Any]:
    """The app with API tokens; the client reads with the viewer token unless told otherwise."""
    (tmp_path / "rules.yml").write_text(rules)
    config = Config.model_validate(
        {
            "database_url": db_url,
            "rules": [str(tmp_path / "rules.yml")],
            "base_dir": tmp_path,
            "remediation": {"poll_interval": "100ms"},
            "auth": AUTH,
            **settings,
        }
    )
    app = create_app(config, metrics=Metrics())
    client: TestClient[Any, Any] = await aiohttp_client(app, headers=bearer(VIEWER))
    return client


def approval_rules(base: str, **extra: str) -> str:
    lines = "".join(f"    {key}: {value}\n" for key, value in extra.items())
    return f"""
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    guards: {{approval: required}}
    actions:
      - type: http
        url: "{base}/restart/db"
        json: {{service: db}}
        expect_status: [202]
    verify: {{resolved_within: 1m}}
{lines}"""


def paging(pd: PagerDuty) -> dict[str, Any]:
    return {
        "external_url": EXTERNAL,
        "channels": {
            "pd-storage": {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": pd.url}
        },
        "escalation": {
            "policies": {"storage": {"steps": [{"notify": ["pd-storage"]}, {"wait": "10m"}]}},
            "link_secret": {"value": "s3cret-for-links"},
        },
    }


def job_in(state: str) -> Callable[[Any], bool]:
    return lambda i: bool(i["remediation"]) and i["remediation"][0]["state"] == state


def near(iso: str | None, expected: datetime, slack_s: float = 30) -> bool:
    assert iso is not None
    return abs((datetime.fromisoformat(iso) - expected).total_seconds()) < slack_s


async def guards(client: TestClient[Any, Any]) -> Any:
    response = await client.get("/api/v1/guards")
    assert response.status == 200, await response.text()
    return await response.json()


async def test_every_remediating_rule_is_listed_with_its_effective_guards(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, db_url, tmp_path, RULES)
    no_token = {"Authorization": ""}  # overrides the client's viewer token
    unauthenticated = await client.get("/api/v1/guards", headers=no_token)
    assert unauthenticated.status == 401
    status = await guards(client)  # as the viewer
    assert status["paused"] is None
    assert status["running"] == []
    assert status["approvals"] == []
    # watchdog only opens incidents and note-only only logs: no guards to show.
    assert [rule["rule"] for rule in status["rules"]] == ["disk", "crashloop"]
    disk, crashloop = status["rules"]

    # disk sets no guards: the service defaults are in force.
    assert disk["guards"]["concurrency"] == 1
    assert disk["guards"]["max_targets"] == 10
    assert disk["guards"]["circuit_breaker"]["failures"] == 5
    assert disk["guards"]["flapping"]["max_flaps"] == 5
    assert disk["guards"]["rate_limit"] is None
    assert disk["guards"]["approval"] is None
    # crashloop's own settings win; the ones it does not set are still the defaults.
    assert crashloop["guards"]["concurrency"] == 2
    assert crashloop["guards"]["rate_limit"] == {"limit": 5, "per_seconds": 3600.0, "key": None}
    assert crashloop["guards"]["circuit_breaker"]["failures"] == 2
    assert crashloop["guards"]["flapping"] is None  # switched off
    assert crashloop["guards"]["max_targets"] == 10
    for rule in (disk, crashloop):
        assert rule["breaker"]["state"] == "closed"
        assert rule["breaker"]["failures"] == 0
        assert rule["rate_limit_usage"] == []

    # A viewer may look, not pull the kill switch.
    denied = await client.post("/api/v1/guards/pause", json={"reason": "curious"})
    assert denied.status == 403
    assert "operator" in (await denied.json())["error"]
    assert (await guards(client))["paused"] is None
    assert (await client.post("/api/v1/guards/resume")).status == 403
    assert (await client.post("/api/v1/guards/breakers/disk/close")).status == 403
    assert (await client.post("/api/v1/jobs/1/approve")).status == 403


async def test_pause_blocks_remediation_and_resume_lifts_it(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, db_url, tmp_path, RULES)
    paused = await client.post(
        "/api/v1/guards/pause", json={"reason": "db migration", "for": "1h"}, headers=OPS
    )
    assert paused.status == 200, await paused.text()
    now = datetime.now(UTC)
    state = (await paused.json())["paused"]
    assert (state["by"], state["reason"]) == ("oncall", "db migration")
    assert near(state["until"], now + timedelta(hours=1))
    assert near(state["since"], now)
    assert (await guards(client))["paused"] == state  # the viewer sees the same

    ready = await (await client.get("/readyz")).json()
    assert ready["status"] == "ready"  # still takes alerts
    automation = ready["automation"]
    assert (automation["state"], automation["paused_by"], automation["reason"]) == (
        "paused",
        "oncall",
        "db migration",
    )
    assert near(automation["until"], now + timedelta(hours=1))
    assert await metric(client, "remediator_automation_paused") == 1

    assert (await client.post(WEBHOOK, json=disk_alert("firing"))).status == 200
    incident = await incident_when(client, lambda i: i["state"] == "escalated")
    [job] = incident["remediation"]
    assert job["state"] == "blocked"
    assert "db migration" in job["outcome"]
    assert job["runs"] == []  # nothing ran
    [decision] = [e for e in incident["timeline"] if e["kind"] == "guard_decision"]
    assert decision["message"].startswith(f"guards block job {job['id']}: pause")
    assert "db migration" in decision["message"]
    assert decision["data"]["verdict"] == "blocked"
    assert decision["data"]["job_id"] == job["id"]
    [escalation] = [e for e in incident["timeline"] if e.get("to_state") == "escalated"]
    assert escalation["message"].startswith("automation blocked: pause")
    assert "db migration" in escalation["message"]
    blocked = {"guard": "pause", "decision": "blocked", "rule": "disk"}
    assert await metric(client, "remediator_guard_decisions_total", **blocked) == 1

    resumed = await client.post("/api/v1/guards/resume", headers=OPS)
    assert resumed.status == 200, await resumed.text()
    assert (await resumed.json())["paused"] is None
    ready = await (await client.get("/readyz")).json()
    assert ready == {"status": "ready", "automation": {"state": "active"}}
    assert await metric(client, "remediator_automation_paused") == 0

    again = await client.post("/api/v1/guards/resume", headers=OPS)
    assert again.status == 409
    assert "not paused" in (await again.json())["error"]


async def test_a_pause_request_names_its_bad_field(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, db_url, tmp_path, RULES)
    for body, field in (({"for": "1h"}, "reason"), ({"reason": "x", "for": "soon"}, "for")):
        response = await client.post("/api/v1/guards/pause", json=body, headers=OPS)
        assert response.status == 400, body
        answer = await response.json()
        assert [detail["path"] for detail in answer["details"]] == [field], answer
    assert (await guards(client))["paused"] is None
    ready = await (await client.get("/readyz")).json()
    assert ready["automation"] == {"state": "active"}


async def test_a_job_that_needs_approval_waits_pages_and_runs_once_approved_by_link(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    pagerduty: PagerDuty,
) -> None:
    service, base = deployer
    rules = approval_rules(base, escalate="{policy: storage}")
    client = await serve(aiohttp_client, db_url, tmp_path, rules, **paging(pagerduty))
    assert (await client.post(WEBHOOK, json=disk_alert("firing"))).status == 200
    incident = await incident_when(client, job_in("awaiting_approval"))
    [job] = incident["remediation"]
    assert incident["state"] == "open"
    assert near(job["approval_due_at"], datetime.now(UTC) + timedelta(hours=1))
    [waiting] = (await guards(client))["approvals"]
    assert waiting["job_id"] == job["id"]
    assert (waiting["incident_id"], waiting["rule"]) == (incident["id"], "disk")
    assert waiting["due_at"] is not None
    [decision] = [e for e in incident["timeline"] if e["kind"] == "guard_decision"]
    assert decision["message"].startswith(f"job {job['id']} needs approval")
    assert decision["data"]["verdict"] == "pending"

    [trigger] = await pd_events(pagerduty, 1)
    assert trigger["payload"]["custom_details"]["reason"].startswith(
        f"approval needed: job {job['id']}"
    )
    [link] = [item["href"] for item in trigger["links"] if "/approval-link?" in item["href"]]
    path = link.removeprefix(EXTERNAL)
    assert path.startswith(f"/api/v1/jobs/{job['id']}/approval-link?expires=")
    assert service.requests == []  # nothing runs before a human says so

    no_token = {"Authorization": ""}  # the link is the credential
    page = await client.get(path, headers=no_token)  # an unfurler fetching it changes nothing
    assert page.status == 200
    html = await page.text()
    assert 'value="approve"' in html
    assert 'value="reject"' in html
    tampered = path.replace("signature=", "signature=0")
    forged = await client.post(tampered, data={"decision": "approve"}, headers=no_token)
    assert forged.status == 403
    other = path.replace(f"/jobs/{job['id']}/", f"/jobs/{job['id'] + 1}/")
    assert (await client.post(other, data={"decision": "approve"}, headers=no_token)).status == 403
    await asyncio.sleep(0.3)
    assert (await incident_when(client, lambda i: True))["remediation"][0]["state"] == (
        "awaiting_approval"
    )
    assert service.requests == []

    approved = await client.post(path, data={"decision": "approve"}, headers=no_token)
    assert approved.status == 200
    assert "approved" in await approved.text()
    incident = await incident_when(client, lambda i: i["state"] == "verifying")
    [job] = incident["remediation"]
    assert job["state"] == "succeeded"
    assert job["approved_by"] == "approval link"
    assert [run["outcome"] for run in job["runs"]] == ["succeeded"]
    assert [path for path, _ in service.requests] == ["/restart/db"]
    assert (await guards(client))["approvals"] == []
    kinds = [entry["kind"] for entry in incident["timeline"]]
    assert kinds.count("guard_decision") == 2  # waited, then allowed once approved
    assert "approval_given" in kinds
    ack = (await pd_events(pagerduty, 2))[1]
    assert (ack["event_action"], ack["dedup_key"]) == ("acknowledge", trigger["dedup_key"])

    # Decided once: neither the link nor the API decides it again.
    again = await client.post(path, data={"decision": "reject"}, headers=no_token)
    assert again.status == 409
    late = await client.post(f"/api/v1/jobs/{job['id']}/reject", json={}, headers=OPS)
    assert late.status == 409
    assert "not awaiting approval" in (await late.json())["error"]
    unknown = await client.post("/api/v1/jobs/999999/approve", json={}, headers=OPS)
    assert unknown.status == 404
    assert "999999" in (await unknown.json())["error"]


async def test_an_operator_approves_through_the_api_with_a_note(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
) -> None:
    service, base = deployer
    client = await serve(aiohttp_client, db_url, tmp_path, approval_rules(base))
    await client.post(WEBHOOK, json=disk_alert("firing"))
    incident = await incident_when(client, job_in("awaiting_approval"))
    [job] = incident["remediation"]

    approved = await client.post(
        f"/api/v1/jobs/{job['id']}/approve", json={"note": "checked the disk"}, headers=OPS
    )
    assert approved.status == 200, await approved.text()
    assert (await approved.json())["approved_by"] == "oncall"
    incident = await incident_when(client, job_in("succeeded"))
    [given] = [e for e in incident["timeline"] if e["kind"] == "approval_given"]
    assert given["actor"] == "oncall"
    assert "checked the disk" in given["message"]
    assert len(service.requests) == 1


async def test_a_rejected_job_never_runs_and_its_incident_escalates(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
) -> None:
    service, base = deployer
    client = await serve(aiohttp_client, db_url, tmp_path, approval_rules(base))
    await client.post(WEBHOOK, json=disk_alert("firing"))
    incident = await incident_when(client, job_in("awaiting_approval"))
    [job] = incident["remediation"]

    rejected = await client.post(
        f"/api/v1/jobs/{job['id']}/reject", json={"note": "not during the sale"}, headers=OPS
    )
    assert rejected.status == 200, await rejected.text()
    body = await rejected.json()
    assert (body["id"], body["incident_id"], body["rule"]) == (job["id"], incident["id"], "disk")
    assert body["state"] == "rejected"
    assert "oncall" in body["outcome"]
    assert "not during the sale" in body["outcome"]

    incident = await incident_when(client, lambda i: i["state"] == "escalated")
    assert incident["remediation"][0]["state"] == "rejected"
    [escalation] = [e for e in incident["timeline"] if e.get("to_state") == "escalated"]
    assert "approval rejected by oncall" in escalation["message"]
    assert (await guards(client))["approvals"] == []
    await asyncio.sleep(0.3)
    assert service.requests == []


async def test_closing_a_breaker_needs_a_known_rule_and_is_recorded(
    aiohttp_client: Any, db_url: str, tmp_path: Path, deployer: tuple[Deployer, str]
) -> None:
    """A failed remediation opens a breaker of `failures: 1`; an operator closes it early."""
    service, base = deployer
    service.statuses = [404]
    rules = f"""
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    guards: {{circuit_breaker: {{failures: 1, cool_off: 1h}}}}
    actions:
      - {{type: http, url: "{base}/restart/db", json: {{}}, expect_status: [202]}}
"""
    client = await serve(aiohttp_client, db_url, tmp_path, rules)
    await client.post(WEBHOOK, json=disk_alert("firing"))
    incident = await incident_when(client, lambda i: i["state"] == "escalated")
    assert "breaker_opened" in [entry["kind"] for entry in incident["timeline"]]
    [disk] = (await guards(client))["rules"]
    assert disk["breaker"]["state"] == "open"
    assert disk["breaker"]["failures"] == 1
    assert near(disk["breaker"]["open_until"], datetime.now(UTC) + timedelta(hours=1), 60)
    assert await metric(client, "remediator_circuit_breaker_open", rule="disk") == 1
    assert await metric(client, "remediator_circuit_breaker_opened_total", rule="disk") == 1

    unknown = await client.post("/api/v1/guards/breakers/nope/close", headers=OPS)
    assert unknown.status == 404
    assert "nope" in (await unknown.json())["error"]

    closed = await client.post("/api/v1/guards/breakers/disk/close", headers=OPS)
    assert closed.status == 200, await closed.text()
    [disk] = (await closed.json())["rules"]
    assert (disk["breaker"]["state"], disk["breaker"]["failures"]) == ("closed", 0)
    assert disk["breaker"]["changed_by"] == "oncall"
    assert near(disk["breaker"]["changed_at"], datetime.now(UTC))
    assert (await guards(client))["rules"] == [disk]
    assert await metric(client, "remediator_circuit_breaker_open", rule="disk") == 0


async def test_closing_a_closed_breaker_is_harmless(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, db_url, tmp_path, RULES)
    closed = await client.post("/api/v1/guards/breakers/crashloop/close", headers=OPS)
    assert closed.status == 200
    [breaker] = [r["breaker"] for r in (await closed.json())["rules"] if r["rule"] == "crashloop"]
    assert (breaker["state"], breaker["changed_by"]) == ("closed", "oncall")
