"""The remediation loop through the real app: job, real HTTP action, verification, escalation."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from remediator.app import create_app
from remediator.config import Config
from remediator.metrics import Metrics
from tests.conftest import load_fixture

WEBHOOK = "/api/v1/webhooks/alertmanager"


class Deployer:
    """A local service the http action calls; answers with the statuses it is given."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []
        self.statuses: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, await request.json()))
        status = self.statuses.pop(0) if self.statuses else 202
        return web.json_response({"status": status}, status=status)


@pytest.fixture
async def deployer() -> AsyncIterator[tuple[Deployer, str]]:
    service = Deployer()
    app = web.Application()
    app.router.add_post("/restart/{service}", service.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield service, f"http://127.0.0.1:{server.port}"
    await server.close()


def rules(base: str, verify: str = "1s", dry_run: bool = False) -> str:
    return f"""
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    dry_run: {str(dry_run).lower()}
    actions:
      - type: http
        url: "{base}/restart/{{{{ labels.service }}}}"
        json: {{instance: "{{{{ labels.instance }}}}", incident: "{{{{ incident.id }}}}"}}
        expect_status: [202]
        retries: 2
    verify: {{resolved_within: {verify}}}
"""


async def start(
    aiohttp_client: Any, db_url: str, tmp_path: Path, text: str, **settings: Any
) -> TestClient[Any, Any]:
    """The app on `db_url` with rules `text`; `settings` are more config keys."""
    (tmp_path / "rules.yml").write_text(text)
    config = Config.model_validate(
        {
            "database_url": db_url,
            "rules": [str(tmp_path / "rules.yml")],
            "base_dir": tmp_path,
            "remediation": {"poll_interval": "100ms"},
            **settings,
        }
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config, metrics=Metrics()))
    return client


def disk_alert(status: str, instance: str = "db-1:9100") -> dict[str, Any]:
    body = copy.deepcopy(load_fixture("diskfill-firing.json"))
    alert = body["alerts"][0]
    alert["labels"]["instance"] = instance
    alert["status"] = status
    if status == "resolved":
        alert["endsAt"] = "2099-01-01T00:00:00Z"
    return body


async def incident_when(client: TestClient[Any, Any], done: Any, wait_s: float = 15) -> Any:
    """Poll the API until `done(incident)` holds; fail showing the last state seen."""
    incident: Any = None
    try:
        async with asyncio.timeout(wait_s):
            while True:
                listing = await (await client.get("/api/v1/incidents")).json()
                if listing["incidents"]:
                    detail = await client.get(f"/api/v1/incidents/{listing['incidents'][0]['id']}")
                    incident = await detail.json()
                    if done(incident):
                        return incident
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"incident never reached the expected state; last seen: {incident}")


async def test_a_fixed_fault_ends_auto_remediated(
    aiohttp_client: Any, db_url: str, tmp_path: Path, deployer: tuple[Deployer, str]
) -> None:
    service, base = deployer
    client = await start(aiohttp_client, db_url, tmp_path, rules(base, verify="1m"))
    hostile = "{{ 7*7 }}:9100"
    assert (await client.post(WEBHOOK, json=disk_alert("firing", hostile))).status == 200
    incident = await incident_when(client, lambda i: i["state"] == "verifying")
    job = incident["remediation"][0]
    assert job["state"] == "succeeded"
    assert [run["outcome"] for run in job["runs"]] == ["succeeded"]
    path, body = service.requests[0]
    assert body == {"instance": hostile, "incident": str(incident["id"])}  # data, not code
    assert path.startswith("/restart/")
    assert (await client.post(WEBHOOK, json=disk_alert("resolved", hostile))).status == 200
    incident = await incident_when(client, lambda i: i["state"] == "resolved")
    assert incident["resolved_reason"].startswith("auto-remediated")
    # The quality report counts it as fixed by automation; nobody was paged.
    assert (incident["resolution"], incident["paged_at"], incident["escalated_at"]) == (
        "automation",
        None,
        None,
    )
    assert incident["response_seconds"] is None  # no human had to respond
    assert incident["resolve_seconds"] > 0
    kinds = [entry["kind"] for entry in incident["timeline"]]
    assert "remediation_queued" in kinds
    assert "action_succeeded" in kinds


async def test_retryable_failures_are_retried_then_succeed(
    aiohttp_client: Any, db_url: str, tmp_path: Path, deployer: tuple[Deployer, str]
) -> None:
    service, base = deployer
    service.statuses = [503, 429]
    client = await start(aiohttp_client, db_url, tmp_path, rules(base, verify="1m"))
    await client.post(WEBHOOK, json=disk_alert("firing"))
    incident = await incident_when(client, lambda i: i["state"] == "verifying")
    runs = incident["remediation"][0]["runs"]
    assert [(r["attempt"], r["outcome"], r["retryable"]) for r in runs] == [
        (1, "failed", True),
        (2, "failed", True),
        (3, "succeeded", False),
    ]
    assert "503" in runs[0]["summary"]


async def test_a_client_error_is_not_retried_and_escalates(
    aiohttp_client: Any, db_url: str, tmp_path: Path, deployer: tuple[Deployer, str]
) -> None:
    service, base = deployer
    service.statuses = [404]
    client = await start(aiohttp_client, db_url, tmp_path, rules(base))
    await client.post(WEBHOOK, json=disk_alert("firing"))
    incident = await incident_when(client, lambda i: i["state"] == "escalated")
    assert len(service.requests) == 1
    job = incident["remediation"][0]
    assert job["state"] == "failed"
    assert "404" in job["outcome"]
    [escalation] = [e for e in incident["timeline"] if e["to_state"] == "escalated"]
    assert escalation["message"].startswith("remediation failed")
    metrics = await (await client.get("/metrics")).text()
    assert "remediator_incidents_escalated_total 1.0" in metrics


@pytest.mark.parametrize("window", ["1s", "0s"])
async def test_a_fault_that_stays_escalates_after_the_window(
    aiohttp_client: Any, db_url: str, tmp_path: Path, deployer: tuple[Deployer, str], window: str
) -> None:
    """0s is a window too ("act, then hand over"), not the 5m default."""
    _, base = deployer
    client = await start(aiohttp_client, db_url, tmp_path, rules(base, verify=window))
    await client.post(WEBHOOK, json=disk_alert("firing"))
    incident = await incident_when(client, lambda i: i["state"] == "escalated", wait_s=8)
    [escalation] = [e for e in incident["timeline"] if e["to_state"] == "escalated"]
    assert escalation["message"].startswith("not verified: 1 of 1 alert(s)")
    # No escalation policy is configured: the timeline says that nobody was paged.
    assert incident["timeline"][-1]["kind"] == "escalation_none"
    [verifying] = [e for e in incident["timeline"] if e.get("to_state") == "verifying"]
    assert f"verifying within {window}: all alerts must resolve" in verifying["message"]


async def test_dry_run_records_the_rendered_action_and_sends_nothing(
    aiohttp_client: Any, db_url: str, tmp_path: Path, deployer: tuple[Deployer, str]
) -> None:
    service, base = deployer
    client = await start(aiohttp_client, db_url, tmp_path, rules(base, verify="1m", dry_run=True))
    await client.post(WEBHOOK, json=disk_alert("firing"))
    incident = await incident_when(client, lambda i: i["state"] == "verifying")
    [run] = incident["remediation"][0]["runs"]
    assert run["outcome"] == "dry_run"
    assert run["params"]["url"] == f"{base}/restart/storage"
    assert service.requests == []


async def test_an_intake_only_replica_queues_jobs_and_runs_none(
    aiohttp_client: Any, db_url: str, tmp_path: Path, deployer: tuple[Deployer, str]
) -> None:
    """workers: 0 takes webhooks; its jobs wait in the database for a replica with workers."""
    service, base = deployer
    client = await start(
        aiohttp_client,
        db_url,
        tmp_path,
        rules(base, verify="1m"),
        remediation={"poll_interval": "100ms", "workers": 0},
    )
    assert (await client.post(WEBHOOK, json=disk_alert("firing"))).status == 200
    await asyncio.sleep(0.5)  # several sweeps: none of them may claim the job
    incident = await incident_when(client, lambda i: bool(i["remediation"]))
    assert incident["state"] == "open"
    assert [job["state"] for job in incident["remediation"]] == ["queued"]
    assert service.requests == []
