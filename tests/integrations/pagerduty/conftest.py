"""A local PagerDuty Events API v2 on 127.0.0.1 that enforces the documented contract.

`POST /v2/enqueue` with `Content-Type: application/json`; the rules below follow
developer.pagerduty.com "Send an Alert Event" and the Events API v2 overview:
routing_key (32 characters) and event_action required; dedup_key at most 255 characters;
for trigger, payload.summary (at most 1024), payload.source and payload.severity
(critical|error|warning|info) required, timestamp ISO 8601, custom_details an object,
links/images arrays of objects with href/src. An accepted event gets 202 with
`{"status": "success", "message": "Event processed", "dedup_key": ...}`; a rejected one
400 with `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`.

Stricter than the real service in one way: unknown top-level or payload fields are
rejected too, so that a misspelt field fails a test instead of being dropped silently.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeGuard

import pytest
from aiohttp import web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer
from remediator_integrations.pagerduty import PagerDutyChannel, PagerDutySettings

from remediator.plugins import AttemptSummary, Notification

ROUTING_KEY = "R0123456789abcdef0123456789abcde"  # 32 characters, as PagerDuty requires
_EVENT_FIELDS = {
    "routing_key",
    "event_action",
    "dedup_key",
    "payload",
    "links",
    "images",
    "client",
    "client_url",
}
_PAYLOAD_FIELDS = {
    "summary",
    "source",
    "severity",
    "timestamp",
    "component",
    "group",
    "class",
    "custom_details",
}


@dataclass
class Scripted:
    """One answer the server gives instead of its own, after checking the request."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class PagerDuty:
    """The fake service: what it received, what it accepted, what it answers next."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    script: list[Scripted] = field(default_factory=list)
    hang: bool = False


def _text(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.strip() != ""


def _timestamp_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "'payload.timestamp' must be a string"
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return "'payload.timestamp' is not a valid ISO 8601 timestamp"
    return None


def _payload_problems(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    problems = [f"'payload.{key}' is not a known field" for key in payload.keys() - _PAYLOAD_FIELDS]
    for key in ("summary", "source", "severity"):
        if not _text(payload.get(key)):
            problems.append(f"'payload.{key}' is missing or blank")
    if _text(payload.get("summary")) and len(payload["summary"]) > 1024:
        problems.append("'payload.summary' is too long (maximum is 1024 characters)")
    if _text(payload.get("severity")) and payload["severity"] not in (
        "critical",
        "error",
        "warning",
        "info",
    ):
        problems.append("'payload.severity' must be one of critical, error, warning, info")
    if "timestamp" in payload and (problem := _timestamp_problem(payload["timestamp"])):
        problems.append(problem)
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        problems.append("'payload.custom_details' must be an object")
    for key in ("component", "group", "class"):
        if key in payload and not isinstance(payload[key], str):
            problems.append(f"'payload.{key}' must be a string")
    return problems


def _context_problems(event: dict[str, Any]) -> list[str]:
    problems = []
    for name, required in (("links", "href"), ("images", "src")):
        items = event.get(name, [])
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and _text(item.get(required)) for item in items
        ):
            problems.append(f"'{name}' must be an array of objects with '{required}'")
    for name in ("client", "client_url"):
        if name in event and not isinstance(event[name], str):
            problems.append(f"'{name}' must be a string")
    return problems


def event_problems(event: Any) -> list[str]:
    """Why PagerDuty would reject `event` (empty when it would accept it)."""
    if not isinstance(event, dict):
        return ["Event must be a JSON object"]
    problems = [f"'{key}' is not a known field" for key in event.keys() - _EVENT_FIELDS]
    key = event.get("routing_key")
    if not _text(key):
        problems.append("'routing_key' is missing or blank")
    elif len(key) != 32:
        problems.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        problems.append("'event_action' must be one of trigger, acknowledge, resolve")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        problems.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not _text(dedup_key):
        problems.append("'dedup_key' is missing or blank")
    if action == "trigger":
        problems += _payload_problems(event.get("payload")) + _context_problems(event)
    return problems


def invalid(errors: list[str]) -> web.Response:
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    return web.json_response(body, status=400)


@pytest.fixture
async def pagerduty(aiohttp_server: AiohttpServer) -> PagerDuty:
    """The fake Events API; its endpoint is `pagerduty.url`."""
    state = PagerDuty()

    async def enqueue(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.seen.append(Seen(request.method, request.path, CIMultiDict(request.headers), body))
        if state.hang:
            await asyncio.sleep(3600)  # until the client gives up and the server cancels us
        if request.content_type != "application/json":
            return invalid([f"Content-Type must be application/json, not {request.content_type}"])
        if len(body) > 512 * 1024:
            # PagerDuty documents the 512 KB limit but not its answer; 400 is our guess.
            return invalid(["Event is larger than 512 KB"])
        try:
            event = json.loads(body)
        except ValueError:
            return invalid(["Event is not valid JSON"])
        problems = event_problems(event)
        if problems:
            return invalid(problems)
        if state.script:
            scripted = state.script.pop(0)
            return web.Response(
                status=scripted.status, text=scripted.body, headers=scripted.headers
            )
        state.accepted.append(event)
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        reply = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
        return web.json_response(reply, status=202)

    app = web.Application()
    app.router.add_post("/v2/enqueue", enqueue)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.url = f"http://127.0.0.1:{server.port}/v2/enqueue"
    return state


MakeChannel = Callable[..., PagerDutyChannel]


@pytest.fixture
async def make_channel(pagerduty: PagerDuty) -> AsyncIterator[MakeChannel]:
    """Channels to the fake service (routing key inline unless given), closed afterwards."""
    made: list[PagerDutyChannel] = []

    def make(**settings: Any) -> PagerDutyChannel:
        if not any(key.startswith("routing_key") for key in settings):
            settings["routing_key"] = ROUTING_KEY
        settings.setdefault("url", pagerduty.url)
        channel = PagerDutyChannel(PagerDutySettings.model_validate(settings))
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.close()


OPENED = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
NOTIFICATION = Notification(
    event="trigger",
    incident_id=7,
    dedup_key="remediator-7",
    title="web-1: HighErrorRate",
    priority="P2",
    state="escalated",
    reason="verification failed: alert still firing after 5m",
    labels={"alertname": "HighErrorRate", "instance": "web-1:9100", "service": "web"},
    annotations={"summary": "5xx above 5%"},
    runbook="https://runbooks.example.com/high-error-rate",
    rule="restart-web",
    opened_at=OPENED,
    incident_url="https://remediator.example.com/incidents/7",
    attempts=(
        AttemptSummary(
            action="ansible action 1",
            attempt=1,
            outcome="failed",
            summary="restart.yml: web-1 unreachable",
            at=datetime(2024, 5, 1, 12, 31, tzinfo=UTC),
        ),
    ),
)


def notification(**changes: Any) -> Notification:
    """NOTIFICATION with some fields changed."""
    return replace(NOTIFICATION, **changes)
