"""The awx action through the real app: an Alertmanager alert remediated by an AWX job."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_remediation import WEBHOOK, incident_when, start
from tests.conftest import load_fixture

from .conftest import RECAP, TOKEN, Controller

RULES = """
rules:
  - name: disk-via-awx
    match: ['alertname="DiskWillFillIn4Hours"']
    actions:
      - type: awx
        job_template: restart-db
        extra_vars:
          mountpoint: "{{ labels.mountpoint }}"
          service: "{{ labels.service }}"
        limit: "{{ labels.instance | replace(':9100', '') }}"
        timeout: 30s
    verify: {resolved_within: 1m}
"""


async def test_an_alert_is_remediated_by_an_awx_job(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    controller: Controller,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWX_APP_TOKEN", TOKEN)
    executors = {
        "awx": {
            "url": controller.base,
            "token_env": "AWX_APP_TOKEN",
            "poll_interval": "20ms",
            "max_poll_interval": "100ms",
        }
    }
    client = await start(aiohttp_client, db_url, tmp_path, RULES, executors=executors)
    body = copy.deepcopy(load_fixture("diskfill-firing.json"))
    body["alerts"][0]["labels"]["service"] = "{{ 7*7 }}'; rm -rf /"  # hostile, stays data

    assert (await client.post(WEBHOOK, json=body)).status == 200
    incident = await incident_when(client, lambda i: i["state"] == "verifying")

    [launch] = controller.launches
    assert launch == {
        "extra_vars": {"mountpoint": "/var/lib/postgresql", "service": "{{ 7*7 }}'; rm -rf /"},
        "limit": "db-1",
    }
    [job] = controller.jobs.values()
    [run] = incident["remediation"][0]["runs"]
    assert run["outcome"] == "succeeded"
    summary = f"AWX job {job.id} (template 'restart-db') successful in 12.3s; db-1 ok=2 changed=1"
    assert run["summary"] == summary
    assert run["output"] == f"AWX job {job.id}, template 'restart-db': successful\n{RECAP}"
    assert not run["output_truncated"]
    entries = [entry for entry in incident["timeline"] if entry["kind"] == "action_succeeded"]
    assert [entry["message"] for entry in entries] == [
        f"awx action 1, attempt 1: succeeded: {summary}"
    ]
