"""Guards hold across replicas: two `remediator serve` processes on one PostgreSQL.

Guard state lives in the database, so two replicas enforce one limit together, and a limit
still holds after both are killed. Each test gets a database of its own, two real services
on it (eight workers each, polling every 100 ms) and a local HTTP target that the rule's real
`http` action calls. The target holds every request for a second, so remediations overlap
in time: a guard that counted only in memory, or that two replicas could pass at once, would
let a second request through.

- A burst of 20 different alerts for one host, split over both replicas at once: exactly one
  request reaches the host; the other 19 jobs are blocked by concurrency or cooldown.
- A rate limit of 3 per hour over 12 hosts, split the same way: exactly 3 requests.
- Both replicas killed with SIGKILL, a fresh one on the same database: the rate limit still
  blocks.

Webhook bodies are copies of a body captured from Alertmanager 0.25 with other labels and
fingerprints.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from remediator.store import migrate
from remediator.store.database import Database
from tests.conftest import PG_ADMIN_URL, load_fixture, missing
from tests.e2e.conftest import WEBHOOK, Launcher, Service, am_time, now_ms

pytestmark = pytest.mark.e2e

RULE = "guarded-restart"
HOLD_S = 1.0  # the target answers each request after this long
SETTLE_TIMEOUT = 30.0
ENDED = {"succeeded", "failed", "blocked", "cancelled", "interrupted", "rejected"}
SETTINGS: dict[str, Any] = {"remediation": {"workers": 8, "poll_interval": "100ms"}}


# -- the database, the target, the replicas ---------------------------------------------------


async def _admin(statement: str) -> None:
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database for this test only; dropped afterwards."""
    name = f"remediator_guards_{uuid.uuid4().hex[:10]}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except (OSError, SQLAlchemyError) as exc:
        missing(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        # Migrated once here: two services migrating a new database at once would race.
        db = Database(url)
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()
        yield url
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def replicas(
    tmp_path: Path, pg_url: str, http: aiohttp.ClientSession
) -> AsyncIterator[Launcher]:
    """Starts services on the test's database; SIGTERMs and checks the live ones at the end."""
    launcher = Launcher(tmp_path, pg_url, http)
    yield launcher
    await launcher.stop_all()


@dataclass
class Target:
    """The host the rule remediates: records every request, answers each after HOLD_S."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        await asyncio.sleep(HOLD_S)
        return web.json_response({"restarted": True})


@pytest.fixture
async def target(aiohttp_server: AiohttpServer) -> Target:
    state = Target()
    app = web.Application()
    app.router.add_post("/restart", state.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.url = f"http://127.0.0.1:{server.port}/restart"
    return state


def rules(target: Target, alertname: str, guards: dict[str, Any]) -> str:
    rule = {
        "name": RULE,
        "match": [f'alertname=~"{alertname}"'],
        "incident": {"priority": "P2"},
        "actions": [
            {
                "type": "http",
                "url": target.url,
                "json": {"instance": "{{ labels.instance }}", "alert": "{{ labels.alertname }}"},
                "timeout": "20s",
            }
        ],
        "guards": guards,
    }
    return yaml.safe_dump({"rules": [rule]}, sort_keys=False)


def kill(launcher: Launcher, service: Service) -> None:
    """SIGKILL: no shutdown at all; the launcher no longer checks its exit."""
    service.process.kill()
    launcher.started.remove(service)


# -- webhooks ---------------------------------------------------------------------------------


def notification(alertname: str, instance: str) -> dict[str, Any]:
    """Alertmanager 0.25's body for one new firing alert: the captured one, relabelled."""
    body = copy.deepcopy(load_fixture("diskfill-firing.json"))
    [alert] = body["alerts"]
    labels = {**alert["labels"], "alertname": alertname, "instance": instance}
    alert["labels"] = labels
    alert["fingerprint"] = uuid.uuid4().hex[:16]
    alert["startsAt"] = am_time(now_ms())
    body["commonLabels"] = dict(labels)
    body["groupLabels"] = {"alertname": alertname, "service": labels["service"]}
    body["groupKey"] = f'{{}}:{{alertname="{alertname}", service="{labels["service"]}"}}'
    return body


async def send_all(services: list[Service], bodies: list[dict[str, Any]]) -> None:
    """POST every body at once, round robin over the services; each must be accepted."""

    async def send(service: Service, body: dict[str, Any]) -> None:
        status, reply = await service.post_json(WEBHOOK, body)
        assert status == 200, f"{service.url} refused a webhook: {status} {reply}"

    await asyncio.gather(
        *(send(services[n % len(services)], body) for n, body in enumerate(bodies))
    )


# -- reading the outcome ----------------------------------------------------------------------


async def bounded(
    fetch: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], what: str, within: float
) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}; last seen: {value!r}")
        await asyncio.sleep(0.2)


async def all_jobs(service: Service) -> list[dict[str, Any]]:
    """Every remediation job of every incident, with its incident's id."""
    jobs = []
    for listed in await service.incidents(limit="500"):
        detail = await service.incident(listed["id"])
        jobs += [{**job, "incident_id": listed["id"]} for job in detail["remediation"]]
    return jobs


async def settled_jobs(service: Service, count: int) -> list[dict[str, Any]]:
    """Wait until `count` jobs exist and every one has ended; return them."""
    jobs: list[dict[str, Any]] = await bounded(
        lambda: all_jobs(service),
        lambda jobs: len(jobs) == count and all(job["state"] in ENDED for job in jobs),
        f"{count} remediation jobs to end",
        SETTLE_TIMEOUT,
    )
    return jobs


async def decisions(services: list[Service], guard: str, decision: str) -> float:
    """remediator_guard_decisions_total of the rule, summed over the services."""
    total = 0.0
    for service in services:
        total += await service.metric(
            "remediator_guard_decisions_total", guard=guard, rule=RULE, decision=decision
        )
    return total


async def rate_usage(service: Service) -> list[dict[str, Any]]:
    status = await service.get_json("/api/v1/guards")
    [rule] = [rule for rule in status["rules"] if rule["rule"] == RULE]
    usage: list[dict[str, Any]] = rule["rate_limit_usage"]
    return usage


# -- the tests --------------------------------------------------------------------------------


async def test_a_burst_for_one_target_over_two_replicas_runs_one_action(
    replicas: Launcher, target: Target
) -> None:
    guards = {
        "target": "{{ labels.instance }}",
        "concurrency": 1,
        "cooldown": "10m",
        "flapping": False,
        "circuit_breaker": False,
    }
    config = rules(target, "Burst.*", guards)
    first = await replicas.start(config, **SETTINGS)
    second = await replicas.start(config, **SETTINGS)
    both = [first, second]

    bursts = [notification(f"Burst{n}", "web-1:9100") for n in range(1, 21)]
    await send_all(both, bursts)
    jobs = await settled_jobs(first, 20)

    assert len(target.requests) == 1, f"the target got {len(target.requests)} requests"
    assert target.requests[0]["instance"] == "web-1:9100"
    succeeded = [job for job in jobs if job["state"] == "succeeded"]
    assert len(succeeded) == 1, f"succeeded jobs: {succeeded}"
    assert len({job["incident_id"] for job in jobs}) == 20, "one incident per alert"
    blocked = [job for job in jobs if job["state"] == "blocked"]
    assert len(blocked) == 19, f"job states: {sorted(job['state'] for job in jobs)}"
    for job in blocked:
        assert job["outcome"].startswith(("concurrency: ", "cooldown: ")), job["outcome"]
        assert job["runs"] == [], f"a blocked job ran an action: {job}"
    # Both replicas decided (the lock was contended), and all but one was refused.
    for service in both:
        decided = await service.metric(
            "remediator_guard_decisions_total", guard="target", rule=RULE, decision="allowed"
        )
        assert decided > 0, f"{service.url} decided no job: the burst did not reach both"
    refused = await decisions(both, "concurrency", "blocked")
    refused += await decisions(both, "cooldown", "blocked")
    assert refused == 19
    assert await decisions(both, "cooldown", "allowed") == 1
    # The same view from either replica: nothing runs any more.
    for service in both:
        status = await service.get_json("/api/v1/guards")
        assert status["running"] == []


async def test_a_rate_limit_holds_across_two_replicas(replicas: Launcher, target: Target) -> None:
    guards = {
        "rate_limit": "3 per 1h",
        "target": "{{ labels.instance }}",
        "concurrency": 1,
        "flapping": False,
        "circuit_breaker": False,
    }
    config = rules(target, "HostDown", guards)
    first = await replicas.start(config, **SETTINGS)
    second = await replicas.start(config, **SETTINGS)
    both = [first, second]

    await send_all(both, [notification("HostDown", f"host-{n}:9100") for n in range(12)])
    jobs = await settled_jobs(second, 12)

    assert len(target.requests) == 3, f"the target got {len(target.requests)} requests"
    assert len({request["instance"] for request in target.requests}) == 3
    states = sorted(job["state"] for job in jobs)
    assert states == ["blocked"] * 9 + ["succeeded"] * 3
    for job in jobs:
        if job["state"] == "blocked":
            assert job["outcome"].startswith("rate_limit: rate limit reached: 3 of 3"), job
    assert await decisions(both, "rate_limit", "blocked") == 9
    assert await decisions(both, "rate_limit", "allowed") == 3
    for service in both:
        assert await rate_usage(service) == [{"key": "", "used": 3}]


async def test_a_rate_limit_survives_killing_every_replica(
    replicas: Launcher, target: Target
) -> None:
    guards = {
        "rate_limit": "3 per 1h",
        "target": "{{ labels.instance }}",
        "flapping": False,
        "circuit_breaker": False,
    }
    config = rules(target, "HostDown", guards)
    first = await replicas.start(config, **SETTINGS)
    second = await replicas.start(config, **SETTINGS)

    await send_all([first, second], [notification("HostDown", f"host-{n}:9100") for n in range(6)])
    jobs = await settled_jobs(first, 6)
    assert sorted(job["state"] for job in jobs) == ["blocked"] * 3 + ["succeeded"] * 3
    assert len(target.requests) == 3
    for service in (first, second):
        kill(replicas, service)
        await service.process.wait()

    fresh = await replicas.start(config, **SETTINGS)
    assert await rate_usage(fresh) == [{"key": "", "used": 3}]
    await send_all([fresh], [notification("HostDown", "host-new:9100")])
    jobs = await settled_jobs(fresh, 7)
    [latest] = [job for job in jobs if job["id"] == max(job["id"] for job in jobs)]
    assert latest["state"] == "blocked", latest
    assert latest["outcome"].startswith("rate_limit: rate limit reached: 3 of 3"), latest
    assert len(target.requests) == 3, "the fresh replica ran an action past the rate limit"
    assert await decisions([fresh], "rate_limit", "blocked") == 1
