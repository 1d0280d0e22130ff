"""A Teams workflow webhook on 127.0.0.1 that enforces the contract the real one has.

Like a Power Automate "When a Teams webhook request is received" trigger, it accepts POSTs
to `/workflows/<id>/triggers/manual/paths/invoke` whose query carries `api-version`, `sp`,
`sv` and the right `sig`, answers 202 with an `x-ms-workflow-run-id`, and answers errors
as Logic Apps does, JSON `{"error": {"code", "message"}}`: 401 for a missing or wrong
signature, 404 for an unknown workflow, 400 `TriggerInputSchemaMismatch` for a body that
is not a message with an Adaptive Card attachment. The card itself is checked as Teams
would render it (element types, required properties, version, OpenUrl links); things that
would fail only later inside the flow (a card over 28 KB) are recorded in `silent_failures`
and the fixture fails the test if there are any. Tests script other answers in `replies`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from remediator_integrations.teams import TeamsChannel, TeamsSettings

from remediator.plugins import AttemptSummary, Notification

WORKFLOW_PATH = "/workflows/0f1e2d3c4b5a/triggers/manual/paths/invoke"
SIGNATURE = "s1gS3cr3t"
# As the Workflows app issues it: sp is percent-encoded and must arrive that way.
QUERY = f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIGNATURE}"
RUN_ID = "08584700000000000000000000000CU00"
MAX_TEAMS_MESSAGE_BYTES = 28 * 1024

_ELEMENTS = {
    "TextBlock": {"type", "text", "wrap", "weight", "size", "isSubtle", "spacing", "color"},
    "FactSet": {"type", "facts", "spacing"},
}


class CardError(ValueError):
    """A body the trigger's schema (or Teams' card renderer) refuses."""


def _string(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value:
        raise CardError(f"{where}: a non-empty string")


def check_element(element: Any, where: str) -> None:
    """A body element: TextBlock or FactSet with only the properties they have."""
    kind = element.get("type") if isinstance(element, dict) else None
    if kind not in _ELEMENTS:
        raise CardError(f"{where}: unexpected element {kind!r}")
    if set(element) - _ELEMENTS[kind]:
        raise CardError(f"{where}: unknown properties {set(element) - _ELEMENTS[kind]}")
    if kind == "TextBlock":
        _string(element.get("text"), f"{where}.text")
    else:
        facts = element.get("facts")
        if not isinstance(facts, list) or not facts:
            raise CardError(f"{where}.facts: a non-empty list")
        for number, fact in enumerate(facts):
            if not isinstance(fact, dict) or set(fact) != {"title", "value"}:
                raise CardError(f"{where}.facts[{number}]: title and value")
            _string(fact["title"], f"{where}.facts[{number}].title")
            _string(fact["value"], f"{where}.facts[{number}].value")


def check_action(action: Any, where: str) -> None:
    if not isinstance(action, dict) or action.get("type") != "Action.OpenUrl":
        raise CardError(f"{where}: only Action.OpenUrl")
    if set(action) - {"type", "title", "url", "style"}:
        raise CardError(f"{where}: unknown properties")
    _string(action.get("title"), f"{where}.title")
    url = action.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise CardError(f"{where}.url: an absolute http(s) URL")


def check_message(payload: Any) -> None:
    """Raise CardError unless `payload` is a message with one Adaptive Card attachment."""
    if not isinstance(payload, dict) or payload.get("type") != "message":
        raise CardError("type: must be message")
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        raise CardError("attachments: exactly one")
    [attachment] = attachments
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        raise CardError("attachments[0].contentType")
    if "contentUrl" not in attachment or attachment["contentUrl"] is not None:
        raise CardError("attachments[0].contentUrl: null")
    card = attachment.get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        raise CardError("content.type: AdaptiveCard")
    if card.get("$schema") != "http://adaptivecards.io/schemas/adaptive-card.json":
        raise CardError("content.$schema")
    if card.get("version") not in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5"):
        raise CardError("content.version: Teams renders 1.0 to 1.5")
    body = card.get("body")
    if not isinstance(body, list) or not body:
        raise CardError("content.body: a non-empty list")
    for index, element in enumerate(body):
        check_element(element, f"body[{index}]")
    for index, action in enumerate(card.get("actions", [])):
        check_action(action, f"actions[{index}]")


@dataclass
class Reply:
    """A scripted answer."""

    status: int
    body: dict[str, Any] | str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (to exceed the client's timeout)."""


@dataclass
class FakeTeams:
    """The fake workflow: what it accepted, and what it answers next."""

    base: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    raw_queries: list[str] = field(default_factory=list)
    silent_failures: list[str] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.base}{WORKFLOW_PATH}?{QUERY}"


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _auth_error(request: web.Request) -> web.Response | None:
    query = request.query
    if not all(query.get(key) for key in ("api-version", "sp", "sv", "sig")):
        return _error(
            401,
            "DirectApiAuthorizationRequired",
            "Required parameters for shared access URL are permissions ('sp'), version "
            "('sv'), and signature ('sig').",
        )
    if query["sig"] != SIGNATURE or query["sp"] != "/triggers/manual/run":
        return _error(
            401,
            "DirectApiInvalidAuthorizationSignature",
            "The provided authorization signature is not valid.",
        )
    return None


@pytest.fixture
async def teams(aiohttp_server: AiohttpServer) -> AsyncIterator[FakeTeams]:
    """The fake workflow webhook, listening on 127.0.0.1."""
    state = FakeTeams()

    async def invoke(request: web.Request) -> web.Response:
        if request.path != WORKFLOW_PATH:
            return _error(404, "WorkflowNotFound", "The workflow could not be found.")
        if request.method != "POST":
            return _error(405, "UnsupportedHttpMethod", "Use POST.")
        denied = _auth_error(request)
        if denied is not None:
            return denied
        state.raw_queries.append(request.raw_path.partition("?")[2])
        raw = await request.read()
        try:
            if request.content_type != "application/json":
                raise CardError("Content-Type must be application/json")
            payload = json.loads(raw)
            check_message(payload)
        except ValueError as error:
            return _error(
                400,
                "TriggerInputSchemaMismatch",
                f"The input body for trigger 'manual' of type 'Request' did not match its "
                f"schema definition. Error details: '{error}'.",
            )
        if len(raw) > MAX_TEAMS_MESSAGE_BYTES:
            state.silent_failures.append(f"message of {len(raw)} bytes")
        if state.replies:
            reply = state.replies.pop(0)
            await asyncio.sleep(reply.delay)
            if isinstance(reply.body, dict):
                return web.json_response(reply.body, status=reply.status, headers=reply.headers)
            return web.Response(status=reply.status, text=reply.body, headers=reply.headers)
        state.received.append(payload)
        return web.Response(status=202, headers={"x-ms-workflow-run-id": RUN_ID})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", invoke)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.base = f"http://127.0.0.1:{server.port}"
    yield state
    assert state.silent_failures == [], "Teams would have dropped these messages"


@pytest.fixture
async def make_channel() -> AsyncIterator[Callable[..., TeamsChannel]]:
    """TeamsChannels with the given settings, closed after the test."""
    made: list[TeamsChannel] = []

    def make(**settings: Any) -> TeamsChannel:
        channel = TeamsChannel(TeamsSettings.model_validate(settings))
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.close()


def notification(**changes: Any) -> Notification:
    """A trigger for incident 7, as the core builds it; `changes` override fields."""
    fields: dict[str, Any] = {
        "event": "trigger",
        "incident_id": 7,
        "dedup_key": "remediator-7",
        "title": "web-1 memory leak",
        "priority": "P1",
        "state": "escalated",
        "reason": "verification failed: alert still firing after 5m",
        "labels": {"alertname": "MemoryLeak", "instance": "web-1", "severity": "critical"},
        "annotations": {"summary": "memory grows"},
        "runbook": "https://runbooks.example.com/memory-leak",
        "rule": "memory-leak",
        "opened_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        "incident_url": "https://remediator.example.com/incidents/7",
        "acknowledge_url": "https://remediator.example.com/ack/7?sig=abc&exp=1",
        "attempts": (
            AttemptSummary(
                action="ansible action 1",
                attempt=1,
                outcome="failed",
                summary="restart-service.yml: web-1 unreachable",
                at=datetime(2024, 5, 1, 12, 1, tzinfo=UTC),
            ),
        ),
    }
    fields.update(changes)
    return Notification(**fields)
