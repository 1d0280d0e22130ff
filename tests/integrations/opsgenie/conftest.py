"""A local Opsgenie Alert API v2 on 127.0.0.1 that enforces the documented contract.

From docs.opsgenie.com (Alert API, REST API response codes) and the official Go SDK:

- `POST /v2/alerts` (create), `POST /v2/alerts/{identifier}/acknowledge` and `/close`
  with `identifierType` id | alias | tiny (default id);
- `Authorization: GenieKey <key>`, else 401; `Content-Type: application/json`, else 415;
  a body that is not JSON, 400;
- create: `message` required, at most 130 characters; alias 512, description 15000,
  entity 512, source 100, user 100, note 25000; at most 20 tags of 50; details a map of
  strings, at most 8000 characters in all; priority P1..P5; responders of type
  team | user | escalation | schedule with id, name or username; semantic errors are 422
  `{"message": "Request body is not processable. Please check the errors.",
  "errors": {field: reason}, "took": …, "requestId": …}`;
- acknowledge/close: optional user (100), source (100), note (25000);
- accepted requests get 202 `{"result": "Request will be processed", "took": …,
  "requestId": …}` (processing is asynchronous).

Stricter than the real service in one way: unknown body fields are a 422 too, so that a
misspelt field fails a test instead of being dropped silently.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer
from remediator_integrations.opsgenie import OpsgenieChannel, OpsgenieSettings

from remediator.plugins import AttemptSummary, Notification

API_KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"
_CREATE_LIMITS = {
    "message": 130,
    "alias": 512,
    "description": 15000,
    "entity": 512,
    "source": 100,
    "user": 100,
    "note": 25000,
}
_ACTION_LIMITS = {"user": 100, "source": 100, "note": 25000}
_CREATE_FIELDS = {
    *_CREATE_LIMITS,
    *("priority", "responders", "visibleTo", "actions", "tags", "details"),
}


@dataclass
class Scripted:
    """One answer the server gives instead of its own, after checking the request."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One accepted request as the server received it."""

    action: str
    identifier: str | None
    identifier_type: str | None
    headers: CIMultiDict[str]
    body: dict[str, Any]


@dataclass
class Opsgenie:
    """The fake service: what it accepted, what it answers next."""

    url: str = ""
    requests: int = 0
    accepted: list[Seen] = field(default_factory=list)
    script: list[Scripted] = field(default_factory=list)
    hang: bool = False


def reply(status: int, **fields: Any) -> web.Response:
    body = {**fields, "took": 0.002, "requestId": str(uuid.uuid4())}
    return web.json_response(body, status=status)


def _string_problems(body: dict[str, Any], limits: dict[str, int]) -> dict[str, str]:
    problems = {}
    for key, limit in limits.items():
        if key not in body:
            continue
        if not isinstance(body[key], str):
            problems[key] = f"{key} must be a string"
        elif len(body[key]) > limit:
            problems[key] = f"{key} can not be longer than {limit} characters"
    return problems


def _responder_problem(responder: Any) -> str | None:
    if not isinstance(responder, dict):
        return "Responder must be an object"
    if responder.get("type") not in ("team", "user", "escalation", "schedule"):
        return f"Invalid responder type '{responder.get('type')}'"
    keys = {"id", "name", "username"} & responder.keys()
    if len(keys) != 1 or not all(isinstance(responder[key], str) for key in keys):
        return "Responder must have one of id, name or username"
    return None


def _collection_problems(body: dict[str, Any]) -> dict[str, str]:
    problems = {}
    tags = body.get("tags", [])
    if not isinstance(tags, list) or len(tags) > 20:
        problems["tags"] = "tags must be a list of at most 20"
    elif not all(isinstance(tag, str) and 0 < len(tag) <= 50 for tag in tags):
        problems["tags"] = "tags can not be longer than 50 characters"
    details = body.get("details", {})
    if not isinstance(details, dict) or not all(
        isinstance(value, str) for value in details.values()
    ):
        problems["details"] = "details must be a map of strings"
    elif sum(len(key) + len(value) for key, value in details.items()) > 8000:
        problems["details"] = "details can not be longer than 8000 characters in total"
    for responder in body.get("responders", []):
        if problem := _responder_problem(responder):
            problems["responders#type"] = problem
    return problems


def create_problems(body: Any) -> dict[str, str]:
    """Why Opsgenie would not process a Create Alert body (empty when it would)."""
    if not isinstance(body, dict):
        return {"body": "must be a JSON object"}
    problems = {key: f"{key} is not a known field" for key in body.keys() - _CREATE_FIELDS}
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        problems["message"] = "Message can not be empty."
    problems |= _string_problems(body, _CREATE_LIMITS)
    if "priority" in body and body["priority"] not in ("P1", "P2", "P3", "P4", "P5"):
        problems["priority"] = f"Invalid priority '{body['priority']}'"
    return problems | _collection_problems(body)


def action_problems(body: Any) -> dict[str, str]:
    """Why Opsgenie would not process an Acknowledge or Close Alert body."""
    if not isinstance(body, dict):
        return {"body": "must be a JSON object"}
    problems = {key: f"{key} is not a known field" for key in body.keys() - _ACTION_LIMITS.keys()}
    return problems | _string_problems(body, _ACTION_LIMITS)


async def _checked_body(request: web.Request) -> Any:
    """The JSON body, or the error response Opsgenie gives before looking at its fields."""
    if request.headers.get("Authorization") != f"GenieKey {API_KEY}":
        return reply(401, message="Could not authenticate")
    if request.content_type != "application/json":
        return reply(415, message="Unsupported Media Type")
    try:
        return json.loads(await request.read())
    except ValueError:
        return reply(400, message="Invalid JSON body")


@pytest.fixture
async def opsgenie(aiohttp_server: AiohttpServer) -> Opsgenie:
    """The fake Alert API; its base URL is `opsgenie.url`."""
    state = Opsgenie()

    async def handle(request: web.Request, action: str) -> web.Response:
        state.requests += 1
        if state.hang:
            await asyncio.sleep(3600)  # until the client gives up and the server cancels us
        body = await _checked_body(request)
        if isinstance(body, web.Response):
            return body
        identifier = request.match_info.get("identifier")
        identifier_type = request.query.get("identifierType")
        if identifier is not None and identifier_type not in (None, "id", "alias", "tiny"):
            return reply(422, message=f"Invalid identifierType '{identifier_type}'")
        problems = create_problems(body) if action == "create" else action_problems(body)
        if problems:
            message = "Request body is not processable. Please check the errors."
            return reply(422, message=message, errors=problems)
        if state.script:
            scripted = state.script.pop(0)
            return web.Response(
                status=scripted.status, text=scripted.body, headers=scripted.headers
            )
        headers = CIMultiDict(request.headers)
        state.accepted.append(Seen(action, identifier, identifier_type, headers, body))
        return reply(202, result="Request will be processed")

    async def create(request: web.Request) -> web.Response:
        return await handle(request, "create")

    async def acknowledge(request: web.Request) -> web.Response:
        return await handle(request, "acknowledge")

    async def close(request: web.Request) -> web.Response:
        return await handle(request, "close")

    app = web.Application()
    app.router.add_post("/v2/alerts", create)
    app.router.add_post("/v2/alerts/{identifier}/acknowledge", acknowledge)
    app.router.add_post("/v2/alerts/{identifier}/close", close)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.url = f"http://127.0.0.1:{server.port}"
    return state


MakeChannel = Callable[..., OpsgenieChannel]


@pytest.fixture
async def make_channel(opsgenie: Opsgenie) -> AsyncIterator[MakeChannel]:
    """Channels to the fake service (API key inline unless given), closed afterwards."""
    made: list[OpsgenieChannel] = []

    def make(**settings: Any) -> OpsgenieChannel:
        if not any(key.startswith("api_key") for key in settings):
            settings["api_key"] = API_KEY
        settings.setdefault("url", opsgenie.url)
        channel = OpsgenieChannel(OpsgenieSettings.model_validate(settings))
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.close()


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
    opened_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    incident_url="https://remediator.example.com/incidents/7",
    acknowledge_url="https://remediator.example.com/ack/7?sig=abc",
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
