"""`verify.promql` through the real app: a remediation verified (or not) by a PromQL query.

The Prometheus here is a local server with the query API's contract (tests/prometheus_api.py)
whose answers each test scripts; tests/e2e runs the same loop against the real binary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from remediator.cli import main
from tests.api.test_remediation import (
    WEBHOOK,
    Deployer,
    deployer,
    disk_alert,
    incident_when,
    start,
)
from tests.prometheus_api import BAD_QUERY, HEALTHY, TIMEOUT, FakePrometheus, series

__all__ = ["deployer"]  # the fixture, shared with test_remediation

QUERY = "disk_free_ratio{instance={{ labels.instance }}} < 0.1"


def promql_rules(base: str, within: str = "1m") -> str:
    return f"""
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    actions:
      - type: http
        url: "{base}/restart/db"
        json: {{service: db}}
        expect_status: [202]
    verify:
      promql: '{QUERY}'
      within: {within}
      interval: 1s
"""


async def remediate(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    base: str,
    prometheus: FakePrometheus,
    within: str = "1m",
    instance: str = "db-1:9100",
) -> TestClient[Any, Any]:
    """Start the app with the PromQL rule and send one firing alert (never resolved)."""
    verifiers = {"promql": {"url": prometheus.url}}
    client = await start(
        aiohttp_client, db_url, tmp_path, promql_rules(base, within), verifiers=verifiers
    )
    response = await client.post(WEBHOOK, json=disk_alert("firing", instance))
    assert response.status == 200
    return client


def timeline(incident: Any, kind: str) -> list[str]:
    return [entry["message"] for entry in incident["timeline"] if entry["kind"] == kind]


async def test_the_query_emptying_verifies_the_fix(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    prometheus_api: FakePrometheus,
) -> None:
    prometheus_api.answer(series(1, instance="db-1:9100"), HEALTHY)
    hostile = 'db-1"} or vector(1) #:9100'
    client = await remediate(
        aiohttp_client, db_url, tmp_path, deployer[1], prometheus_api, instance=hostile
    )
    incident = await incident_when(client, lambda i: i["state"] == "resolved")
    # The label value went in as one quoted PromQL string: data, never query code.
    sent = 'disk_free_ratio{instance="db-1\\"} or vector(1) #:9100"} < 0.1'
    assert prometheus_api.queries == [sent, sent]
    assert incident["resolved_reason"] == (
        f"auto-remediated: verified by PromQL: {sent} returned no series"
    )
    [check] = timeline(incident, "verification_check")
    assert check == f'PromQL {sent}: still returns 1 series: {{instance="db-1:9100", n="0"}} = 1'
    [verifying] = [m for m in timeline(incident, "state_changed") if "verifying within" in m]
    assert f"PromQL {sent} must return no series (checked every 1s)" in verifying


async def test_a_query_that_never_empties_escalates_when_the_window_ends(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    prometheus_api: FakePrometheus,
) -> None:
    prometheus_api.answer(series(2))
    client = await remediate(
        aiohttp_client, db_url, tmp_path, deployer[1], prometheus_api, within="3s"
    )
    incident = await incident_when(client, lambda i: i["state"] == "escalated")
    assert "never returned an empty result" in timeline(incident, "state_changed")[-1]
    checks = timeline(incident, "verification_check")
    assert len(checks) >= 2, checks
    assert all("still returns 2 series" in check for check in checks)


async def test_a_query_prometheus_rejects_escalates_at_once(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    prometheus_api: FakePrometheus,
) -> None:
    prometheus_api.answer(BAD_QUERY)
    client = await remediate(aiohttp_client, db_url, tmp_path, deployer[1], prometheus_api)
    incident = await incident_when(client, lambda i: i["state"] == "escalated", wait_s=8)
    reason = timeline(incident, "state_changed")[-1]
    assert reason.startswith("not verified: the PromQL check cannot run: Prometheus answered 400")
    assert len(prometheus_api.queries) == 1


async def test_an_unavailable_prometheus_is_asked_again(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    deployer: tuple[Deployer, str],
    prometheus_api: FakePrometheus,
) -> None:
    prometheus_api.answer(TIMEOUT, HEALTHY)
    client = await remediate(aiohttp_client, db_url, tmp_path, deployer[1], prometheus_api)
    incident = await incident_when(client, lambda i: i["state"] == "resolved")
    [check] = timeline(incident, "verification_check")
    assert "failed: Prometheus answered 503 (timeout)" in check
    assert check.endswith("; will try again")


async def test_without_a_prometheus_only_resolved_alerts_verify(
    aiohttp_client: Any, db_url: str, tmp_path: Path, deployer: tuple[Deployer, str]
) -> None:
    client = await start(aiohttp_client, db_url, tmp_path, promql_rules(deployer[1]))
    await client.post(WEBHOOK, json=disk_alert("firing"))
    incident = await incident_when(client, lambda i: i["state"] == "verifying")
    assert (
        "PromQL check is skipped: verifiers.promql is not configured"
        in (timeline(incident, "state_changed")[-1])
    )
    await client.post(WEBHOOK, json=disk_alert("resolved"))
    incident = await incident_when(client, lambda i: i["state"] == "resolved")
    assert incident["resolved_reason"].startswith("auto-remediated")


def test_check_reports_a_promql_rule_without_a_prometheus(tmp_path: Path, capsys: Any) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(promql_rules("http://127.0.0.1:1"))
    assert main(["check", str(rules)]) == 1
    err = capsys.readouterr().err
    assert f"{rules}:3: rule disk: verify.promql needs a Prometheus to query" in err
    config = tmp_path / "config.yml"
    config.write_text("verifiers:\n  promql: {url: 'http://127.0.0.1:9090'}\n")
    assert main(["check", "--config", str(config), str(rules)]) == 0
