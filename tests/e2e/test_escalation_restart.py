"""Escalation chains survive `kill -9`: the next steps come, each exactly once.

A real `remediator serve` pages a local webhook receiver (the real `webhook` channel, HMAC
signed) for alerts no rule matches, through a policy with a wait between two steps. The
service is killed with SIGKILL during the wait; a new process on the same database must
send every second step, once, and nothing of the first step again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.e2e.conftest import Launcher, Service, am_time, now_ms, webhook_body

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret"
INCIDENTS = 20
WAIT_S = 4


@dataclass
class Receiver:
    """Records verified deliveries: (delivery id, incident id, event)."""

    url: str = ""
    deliveries: list[tuple[str, int, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers["X-Remediator-Timestamp"]
        expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        signature = request.headers["X-Remediator-Signature"]
        if not hmac.compare_digest(f"v1={expected.hexdigest()}", signature):
            return web.Response(status=401)
        document = await request.json()
        delivery = request.headers["X-Remediator-Delivery"]
        self.deliveries.append((delivery, document["incident"]["id"], document["event"]))
        return web.Response(status=204)

    def distinct(self) -> set[tuple[str, int, str]]:
        return set(self.deliveries)


@pytest.fixture
async def receiver(aiohttp_server: AiohttpServer) -> Receiver:
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.url = f"http://127.0.0.1:{server.port}/hook"
    return state


def settings(receiver: Receiver) -> dict[str, Any]:
    return {
        "remediation": {"poll_interval": "200ms"},
        "channels": {"hook": {"type": "webhook", "url": receiver.url, "secret": SECRET}},
        "escalation": {
            "unmatched_policy": "two-steps",
            "policies": {
                "two-steps": {
                    "steps": [{"notify": ["hook"]}, {"wait": f"{WAIT_S}s"}, {"notify": ["hook"]}]
                }
            },
        },
    }


async def until(check: Any, what: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


async def first_steps_recorded(service: Service, count: int, within: float = 20) -> None:
    """Wait until the database holds `count` sent first-step notifications (via the API)."""
    deadline = time.monotonic() + within
    while True:
        sent = 0
        for listed in await service.incidents():
            detail = await service.incident(listed["id"])
            chains = detail["escalations"]
            sent += sum(n["state"] == "sent" for c in chains for n in c["notifications"])
        if sent >= count:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"only {sent} of {count} deliveries recorded within {within:.0f}s")
        await asyncio.sleep(0.1)


def kill(launcher: Launcher, service: Service) -> None:
    """SIGKILL: no shutdown, no lease handed back; the launcher no longer checks its exit."""
    service.process.kill()
    launcher.started.remove(service)


async def test_a_killed_service_resumes_every_chain_without_paging_twice(
    launcher: Launcher, receiver: Receiver
) -> None:
    first = await launcher.start("rules: []\n", **settings(receiver))
    starts_at = am_time(now_ms())
    alerts: list[Mapping[str, Any]] = [
        {
            "labels": {"alertname": "E2EUnknown", "instance": f"host-{n}:9100"},
            "fingerprint": f"{n:016x}",
            "startsAt": starts_at,
        }
        for n in range(INCIDENTS)
    ]
    status, _ = await first.post_json("/api/v1/webhooks/alertmanager", webhook_body(alerts))
    assert status == 200
    await until(lambda: len(receiver.distinct()) == INCIDENTS, "the first step", 20)
    await first_steps_recorded(first, INCIDENTS)  # so that the kill hits the wait, not a send
    kill(launcher, first)
    await first.process.wait()

    second = await launcher.start("rules: []\n", **settings(receiver))
    await until(lambda: len(receiver.distinct()) == 2 * INCIDENTS, "the second step", 30)
    await asyncio.sleep(1.0)  # more polls: nothing else may come

    pages = receiver.distinct()
    assert len(pages) == 2 * INCIDENTS, "each incident paged once per step"
    per_incident = Counter(incident for _, incident, _ in pages)
    assert set(per_incident.values()) == {2}
    assert {event for _, _, event in pages} == {"trigger"}
    raw = len(receiver.deliveries) - len(pages)
    assert raw == 0, f"{raw} re-deliveries: the kill came during a wait, nothing was in flight"
    for incident_id in per_incident:
        detail = await second.incident(incident_id)
        [chain] = detail["escalations"]
        assert chain["state"] == "done"
        assert [n["state"] for n in chain["notifications"]] == ["sent", "sent"]
