"""A real webhook receiver on 127.0.0.1 that verifies deliveries the way README.md tells
receivers to: signature and freshness with `verify_signature`, then the delivery id."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer
from remediator_integrations.webhook import WebhookChannel, WebhookSettings, verify_signature

from remediator.plugins import AttemptSummary, Notification

SECRET = "whsec-test-0123456789"
NOW = 1_714_564_800.0  # 2024-05-01T12:00:00Z
OPENED = dt.datetime(2024, 5, 1, 11, 30, tzinfo=dt.UTC)


def notification(**fields: Any) -> Notification:
    """A trigger for incident 42 with one failed attempt; `fields` override."""
    base: dict[str, Any] = {
        "event": "trigger",
        "incident_id": 42,
        "dedup_key": "remediator-42",
        "title": "Disk full on db-1",
        "priority": "P1",
        "state": "escalated",
        "reason": "remediation failed",
        "labels": {"alertname": "DiskFull", "instance": "db-1:9100"},
        "annotations": {"summary": "/var is 99% full"},
        "runbook": "https://runbooks.example.com/disk-full",
        "rule": "disk-full",
        "opened_at": OPENED,
        "incident_url": "https://remediator.example.com/incidents/42",
        "acknowledge_url": "https://remediator.example.com/ack/42?sig=abc",
        "attempts": (AttemptSummary("ansible action 1", 1, "failed", "rc=2", OPENED),),
    }
    return Notification(**{**base, **fields})


@dataclass
class Delivery:
    """One request as the receiver got it."""

    headers: CIMultiDict[str]
    body: bytes
    verdict: str
    """accepted, bad signature (stale, future, forged or tampered), or duplicate (a delivery
    id accepted before: a replay or a retry)."""


@dataclass
class Receiver:
    """The test receiver: what it got, its clock, and what it answers next."""

    url: str = ""
    now: float = NOW
    max_age: float = 300
    deliveries: list[Delivery] = field(default_factory=list)
    replies: list[web.Response] = field(default_factory=list)
    """Answers for the next accepted deliveries, in order; then 200 {"ok": true}."""
    delays: list[float] = field(default_factory=list)
    """Seconds to take over answering the next accepted deliveries, in order; then none."""
    accepted_ids: set[str] = field(default_factory=set)
    """Delivery ids answered with 2xx: their repeats are dropped, with a 2xx."""

    @property
    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.verdict == "accepted"]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()  # the raw bytes: verify before parsing
        headers = CIMultiDict(request.headers)
        fresh_and_signed = verify_signature(
            SECRET,
            headers.get("X-Remediator-Timestamp", ""),
            body,
            headers.get("X-Remediator-Signature", ""),
            max_age=self.max_age,
            now=self.now,
        )
        delivery_id = headers.get("X-Remediator-Delivery", "")
        if not fresh_and_signed:
            verdict, reply = "bad signature", web.Response(status=401)
        elif delivery_id in self.accepted_ids:
            verdict, reply = "duplicate", web.Response(status=200, text="duplicate")
        else:
            verdict = "accepted"
            reply = self.replies.pop(0) if self.replies else web.json_response({"ok": True})
            if 200 <= reply.status < 300:
                self.accepted_ids.add(delivery_id)
        self.deliveries.append(Delivery(headers, body, verdict))
        if verdict == "accepted" and self.delays:
            await asyncio.sleep(self.delays.pop(0))  # the work is done; the answer is late
        return reply


@pytest.fixture
async def receiver(aiohttp_server: AiohttpServer) -> Receiver:
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/remediator", state.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.url = f"http://127.0.0.1:{server.port}/hooks/remediator"
    return state


Make = Callable[..., WebhookChannel]


@pytest.fixture
async def make_channel() -> AsyncIterator[Make]:
    """WebhookChannels with the receiver's secret and a fixed clock, closed after the test."""
    made: list[WebhookChannel] = []

    def make(url: str, clock: Callable[[], float] = lambda: NOW, **settings: Any) -> WebhookChannel:
        fields: dict[str, Any] = {"url": url, "secret": SECRET, **settings}
        if {"secret_env", "secret_file"} & settings.keys():
            del fields["secret"]
        channel = WebhookChannel(WebhookSettings.model_validate(fields), clock=clock)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.close()
