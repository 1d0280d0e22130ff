"""`kill -9` of a replica on PostgreSQL, while it ingests and while it runs a playbook.

- Ingesting: four senders post webhooks to replica A while it is killed with SIGKILL. Every
  alert in a body that was answered 200 is stored (read back from the database); bodies that
  got no answer are what Alertmanager retries.
- Running a playbook: replica A runs a real `ansible-playbook` (connection local) that writes
  a file and then waits 60 s; A is killed with SIGKILL mid-play. Replica B, on the same
  database, finds the job's lease lapsed and escalates the incident, saying the job was
  interrupted, within the lease time (3 s here) plus one sweep; the playbook is not run again.

Webhook bodies are copies of a body captured from Alertmanager 0.25, relabelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from remediator.store.database import Database
from tests.conftest import load_fixture
from tests.e2e.conftest import WEBHOOK, Launcher, Service, am_time, now_ms
from tests.e2e.test_guard_replicas import kill, pg_url, replicas

__all__ = ["pg_url", "replicas"]  # fixtures

pytestmark = pytest.mark.e2e

LEASE_S = 3
SWEEP_S = 0.25
PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: mark that the play started
      ansible.builtin.copy: {dest: "{{ started_file }}", content: "started\\n"}
    - name: a long repair
      ansible.builtin.command: sleep 60
"""


def body(first: int, count: int, alertname: str = "KillTest") -> dict[str, Any]:
    template = copy.deepcopy(load_fixture("diskfill-firing.json"))
    [alert] = template["alerts"]
    template["alerts"] = [
        {
            **copy.deepcopy(alert),
            "labels": {**alert["labels"], "alertname": alertname, "instance": f"h{n}:9100"},
            "fingerprint": f"{n + 1:016x}",
            "startsAt": am_time(now_ms()),
        }
        for n in range(first, first + count)
    ]
    return template


async def stored_fingerprints(url: str) -> set[str]:
    db = Database(url)
    try:
        rows = await db.read(
            lambda conn: conn.execute(text("SELECT DISTINCT fingerprint FROM alert_events")).all()
        )
    finally:
        await db.dispose()
    return {row[0] for row in rows}


async def test_alerts_acknowledged_before_a_kill_are_all_stored(
    replicas: Launcher, pg_url: str
) -> None:
    a = await replicas.start()
    acknowledged: set[str] = set()
    unanswered = 0
    stop = asyncio.Event()

    async def sender(lane: int) -> None:
        nonlocal unanswered
        first = lane * 1_000_000
        while not stop.is_set():
            sent = body(first, 20)
            first += 20
            try:
                status, _reply = await a.post_json(WEBHOOK, sent)
            except Exception:  # the process is gone: no answer, Alertmanager would retry
                unanswered += 1
                return
            if status == 200:
                acknowledged.update(alert["fingerprint"] for alert in sent["alerts"])

    senders = [asyncio.create_task(sender(lane)) for lane in range(4)]
    await asyncio.sleep(2.0)  # ingesting at full speed
    kill(replicas, a)
    stop.set()
    await asyncio.gather(*senders)
    assert len(acknowledged) > 500, "too few webhooks were answered before the kill"
    missing = acknowledged - await stored_fingerprints(pg_url)
    assert not missing, f"{len(missing)} alerts answered 200 but not stored"


@pytest.fixture
def ansible_settings(tmp_path: Path) -> dict[str, Any]:
    """Playbooks from tmp_path, run locally with this venv's Python (as test_self_healing)."""
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "long-repair.yml").write_text(PLAYBOOK)
    home = tmp_path / "ansible-home"
    env = {
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
    }
    return {
        "playbooks_dir": str(playbooks),
        "remediation": {
            "workers": 2,
            "lease": f"{LEASE_S}s",
            "poll_interval": f"{int(SWEEP_S * 1000)}ms",
            "data_dir": str(tmp_path / "runs"),
        },
        "executors": {"ansible": {"connection": "local", "extra_env": env}},
    }


def long_repair_rules(started_file: Path) -> str:
    rule = {
        "name": "long-repair",
        "match": ['alertname="LongRepair"'],
        "incident": {"priority": "P2"},
        "actions": [
            {
                "type": "ansible",
                "playbook": "long-repair.yml",
                "hosts": "127.0.0.1",
                "extravars": {"started_file": str(started_file)},
                "timeout": "5m",
            }
        ],
    }
    return yaml.safe_dump({"rules": [rule]}, sort_keys=False)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


async def incident_detail(service: Service) -> dict[str, Any]:
    [listed] = await service.incidents()
    detail: dict[str, Any] = await service.incident(listed["id"])
    return detail


async def until(check: Any, what: str, within: float) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_job_cut_off_by_a_kill_is_escalated_by_another_replica_within_the_lease(
    replicas: Launcher, tmp_path: Path, ansible_settings: dict[str, Any]
) -> None:
    started_file = tmp_path / "play-started"
    rules = long_repair_rules(started_file)
    a = await replicas.start(rules=rules, **ansible_settings)
    status, _reply = await a.post_json(WEBHOOK, body(0, 1, alertname="LongRepair"))
    assert status == 200

    async def play_started() -> bool:
        return started_file.exists()

    await until(play_started, "the play to start", 60)
    b = await replicas.start(rules=rules, **ansible_settings)
    # As when a pod dies: the replica and everything it started (ansible-playbook, its
    # forks), all at once, with no chance to clean up.
    doomed = [a.process.pid, *descendants(a.process.pid)]
    killed_at = time.monotonic()
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    replicas.started.remove(a)

    async def escalated() -> dict[str, Any] | None:
        detail = await incident_detail(b)
        return detail if detail["state"] == "escalated" else None

    detail = await until(escalated, "replica B to escalate the interrupted job", 30)
    took = time.monotonic() - killed_at
    [job] = detail["remediation"]
    assert job["state"] == "interrupted"
    assert any("interrupted: the replica running it stopped" in entry["message"]
               for entry in detail["timeline"])  # fmt: skip
    # The lease lapses at most LEASE_S after its last renewal; B sweeps every SWEEP_S.
    assert took <= LEASE_S + 2 * SWEEP_S + 1.0, f"escalated {took:.1f} s after the kill"
    started_file.unlink()
    await asyncio.sleep(2 * SWEEP_S + 1.0)
    assert not started_file.exists(), "the playbook was run again"
    [job] = (await incident_detail(b))["remediation"]
    assert job["state"] == "interrupted"
    print(f"escalated {took:.2f} s after the kill (lease {LEASE_S} s)")
