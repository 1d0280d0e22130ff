"""Three replicas on one PostgreSQL take a burst of 10,000 alert deliveries with duplicates.

2,000 distinct alerts (one incident each) are each delivered five times: by both members of
an Alertmanager HA pair, and retried, always to a different replica than the last time. The
bodies (40 alerts each) go out 24 at a time. Every delivery must be answered 200; afterwards:

- every alert is stored once (`alert_events`), in one incident, with one remediation job;
- the rule's real `http` action reached the local target exactly once per alert (claimed
  with `FOR UPDATE SKIP LOCKED` by whichever replica got there first);
- no job is left queued or running.

Webhook bodies are copies of a body captured from Alertmanager 0.25, relabelled.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter
from typing import Any

import pytest
import yaml
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from sqlalchemy import text

from remediator.store.database import Database
from tests.conftest import load_fixture
from tests.e2e.conftest import WEBHOOK, Launcher, Service, am_time, now_ms
from tests.e2e.test_guard_replicas import pg_url, replicas

__all__ = ["pg_url", "replicas"]  # fixtures

pytestmark = pytest.mark.e2e

ALERTS = 2000
DELIVERIES = 5  # of each alert: 10,000 in all
PER_BODY = 40
IN_FLIGHT = 24
SETTLE_TIMEOUT = 240.0
SETTINGS: dict[str, Any] = {
    "remediation": {"workers": 8, "max_running_per_rule": 8, "poll_interval": "100ms"}
}


@pytest.fixture
async def target(aiohttp_server: AiohttpServer) -> tuple[Counter[str], str]:
    """The host the rule remediates: counts requests per instance, answers at once."""
    hits: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        hits[(await request.json())["instance"]] += 1
        return web.json_response({"restarted": True})

    app = web.Application()
    app.router.add_post("/restart", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    return hits, f"http://127.0.0.1:{server.port}/restart"


def rules(url: str) -> str:
    rule = {
        "name": "restart",
        "match": ['alertname="BurstTest"'],
        "incident": {"priority": "P3", "group_by": ["instance"]},
        "actions": [{"type": "http", "url": url, "json": {"instance": "{{ labels.instance }}"}}],
        "verify": {"resolved_within": "1h"},
    }
    return yaml.safe_dump({"rules": [rule]}, sort_keys=False)


def bodies() -> list[dict[str, Any]]:
    """Each alert's body DELIVERIES times, shuffled so copies reach different replicas."""
    template = load_fixture("diskfill-firing.json")
    starts = am_time(now_ms())
    groups = []
    for first in range(0, ALERTS, PER_BODY):
        body = copy.deepcopy(template)
        [alert] = body["alerts"]
        body["alerts"] = [
            {
                **copy.deepcopy(alert),
                "labels": {**alert["labels"], "alertname": "BurstTest", "instance": f"h{n}"},
                "fingerprint": f"{n + 1:016x}",
                "startsAt": starts,
            }
            for n in range(first, min(first + PER_BODY, ALERTS))
        ]
        body["groupKey"] = f'{{}}:{{alertname="BurstTest", batch="{first}"}}'
        groups.append(body)
    # Delivery k of every body goes out before delivery k+1 of any: duplicates interleave.
    return [body for _copy in range(DELIVERIES) for body in groups]


async def deliver(services: list[Service], all_bodies: list[dict[str, Any]]) -> Counter[int]:
    """POST all bodies, IN_FLIGHT at a time; body i goes to replica i mod 3 (so the copies of
    one body reach different replicas). Returns the answers' status codes."""
    statuses: Counter[int] = Counter()
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def send(index: int, body: dict[str, Any]) -> None:
        async with gate:
            status, _reply = await services[index % len(services)].post_json(WEBHOOK, body)
            statuses[status] += 1

    await asyncio.gather(*(send(i, body) for i, body in enumerate(all_bodies)))
    return statuses


async def counts(url: str) -> dict[str, Any]:
    queries = {
        "alert_events": "SELECT count(*) FROM alert_events",
        "distinct_alert_events": "SELECT count(DISTINCT fingerprint) FROM alert_events",
        "incidents": "SELECT count(*) FROM incidents",
        "jobs": "SELECT count(*) FROM remediation_jobs",
        "incidents_with_one_job": "SELECT count(*) FROM (SELECT incident_id FROM"
        " remediation_jobs GROUP BY incident_id HAVING count(*) = 1) AS once",
        "unfinished_jobs": "SELECT count(*) FROM remediation_jobs"
        " WHERE state IN ('queued', 'running')",
        "succeeded_jobs": "SELECT count(*) FROM remediation_jobs WHERE state = 'succeeded'",
    }
    db = Database(url)
    try:
        return await db.read(
            lambda conn: {name: conn.execute(text(sql)).scalar() for name, sql in queries.items()}
        )
    finally:
        await db.dispose()


async def test_a_burst_with_duplicates_over_three_replicas_is_stored_and_remediated_once(
    replicas: Launcher, pg_url: str, target: tuple[Counter[str], str]
) -> None:
    hits, url = target
    services = [await replicas.start(rules=rules(url), **SETTINGS) for _ in range(3)]
    started = time.monotonic()
    statuses = await deliver(services, bodies())
    took = time.monotonic() - started
    assert statuses == Counter({200: ALERTS // PER_BODY * DELIVERIES})

    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        found = await counts(pg_url)
        if found["succeeded_jobs"] == ALERTS or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    assert found == {
        "alert_events": ALERTS,
        "distinct_alert_events": ALERTS,
        "incidents": ALERTS,
        "jobs": ALERTS,
        "incidents_with_one_job": ALERTS,
        "unfinished_jobs": 0,
        "succeeded_jobs": ALERTS,
    }
    assert len(hits) == ALERTS
    assert set(hits.values()) == {1}, "some host was remediated more than once"
    settled = time.monotonic() - started
    print(f"{ALERTS * DELIVERIES} deliveries in {took:.1f} s; all remediated in {settled:.1f} s")
