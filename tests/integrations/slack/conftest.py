"""A Slack incoming webhook on 127.0.0.1 that enforces the contract the real one has.

It answers as hooks.slack.com does: 200 with the plain-text body `ok`; errors as a
plain-text error string: 404 `no_service` for an unknown webhook path, 400
`invalid_payload` for a body that is not a JSON object, 400 `invalid_blocks` for blocks
that break Block Kit's rules (types, required fields, text lengths, field and block
counts). Tests script other answers (429 with Retry-After, 5xx, 410, …) in `replies`.
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
from remediator_integrations.slack import SlackChannel, SlackSettings

from remediator.plugins import AttemptSummary, Notification

WEBHOOK_PATH = "/services/T0001/B0001/s3cr3tT0k3n"

_TEXT_TYPES = {"plain_text", "mrkdwn"}
_BLOCK_KEYS = {
    "header": {"type", "text", "block_id"},
    "section": {"type", "text", "fields", "accessory", "block_id"},
    "actions": {"type", "elements", "block_id"},
    "context": {"type", "elements", "block_id"},
    "divider": {"type", "block_id"},
}


class BlockError(ValueError):
    """A payload Slack would refuse with 400 invalid_blocks."""


def _text(obj: Any, limit: int, where: str, plain_only: bool = False) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in _TEXT_TYPES:
        raise BlockError(f"{where}: not a text object")
    if plain_only and obj["type"] != "plain_text":
        raise BlockError(f"{where}: must be plain_text")
    if set(obj) - {"type", "text", "emoji", "verbatim"}:
        raise BlockError(f"{where}: unknown keys")
    text = obj.get("text")
    if not isinstance(text, str) or not text or len(text) > limit:
        raise BlockError(f"{where}: text must be 1..{limit} characters")


def _button(element: Any, where: str) -> None:
    if not isinstance(element, dict) or element.get("type") != "button":
        raise BlockError(f"{where}: only buttons are expected")
    if set(element) - {"type", "text", "url", "action_id", "style", "value"}:
        raise BlockError(f"{where}: unknown keys")
    _text(element.get("text"), 75, f"{where}.text", plain_only=True)
    url = element.get("url")
    if not isinstance(url, str) or not 0 < len(url) <= 3000:
        raise BlockError(f"{where}.url: 1..3000 characters")
    if not isinstance(element.get("action_id"), str) or len(element["action_id"]) > 255:
        raise BlockError(f"{where}.action_id: required, at most 255 characters")
    if element.get("style") not in (None, "primary", "danger"):
        raise BlockError(f"{where}.style: primary or danger")


def _section(block: dict[str, Any], where: str) -> None:
    if "text" not in block and "fields" not in block:
        raise BlockError(f"{where}: a section needs text or fields")
    if "text" in block:
        _text(block["text"], 3000, f"{where}.text")
    if "fields" in block:
        fields = block["fields"]
        if not isinstance(fields, list) or not 0 < len(fields) <= 10:
            raise BlockError(f"{where}.fields: 1..10 items")
        for index, item in enumerate(fields):
            _text(item, 2000, f"{where}.fields[{index}]")
    if "accessory" in block:
        _button(block["accessory"], f"{where}.accessory")


def check_blocks(blocks: Any) -> None:
    """Raise BlockError where Slack would answer 400 invalid_blocks."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        raise BlockError("blocks: a list of at most 50 blocks")
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _BLOCK_KEYS:
            raise BlockError(f"{where}: unknown block type {kind!r}")
        if set(block) - _BLOCK_KEYS[kind]:
            raise BlockError(f"{where}: unknown keys {set(block) - _BLOCK_KEYS[kind]}")
        if kind == "header":
            _text(block.get("text"), 150, f"{where}.text", plain_only=True)
        elif kind == "section":
            _section(block, where)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 25:
                raise BlockError(f"{where}.elements: 1..25 items")
            for number, element in enumerate(elements):
                _button(element, f"{where}.elements[{number}]")
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 10:
                raise BlockError(f"{where}.elements: 1..10 items")
            for number, element in enumerate(elements):
                _text(element, 3000, f"{where}.elements[{number}]")


@dataclass
class Reply:
    """A scripted answer."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (to exceed the client's timeout)."""


@dataclass
class FakeSlack:
    """The fake webhook: what it accepted, and what it answers next."""

    base: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base + WEBHOOK_PATH


def _payload_error(raw: bytes) -> str | None:
    """The error string Slack answers a bad body with, or None when it would post it."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return "invalid_payload"
    if not isinstance(payload, dict):
        return "invalid_payload"
    if not isinstance(payload.get("text"), str) and "blocks" not in payload:
        return "no_text"
    if "blocks" in payload:
        try:
            check_blocks(payload["blocks"])
        except BlockError:
            return "invalid_blocks"
    return None


@pytest.fixture
async def slack(aiohttp_server: AiohttpServer) -> FakeSlack:
    """The fake webhook, listening on 127.0.0.1."""
    state = FakeSlack()

    async def webhook(request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405, text="invalid_method")
        if request.path != WEBHOOK_PATH:
            return web.Response(status=404, text="no_service")
        state.content_types.append(request.headers.get("Content-Type", ""))
        raw = await request.read()
        error = "invalid_payload" if request.content_type != "application/json" else None
        error = error or _payload_error(raw)
        if error is not None:
            state.rejected.append(error)
            return web.Response(status=400, text=error)
        if state.replies:
            reply = state.replies.pop(0)
            await asyncio.sleep(reply.delay)
            return web.Response(status=reply.status, text=reply.body, headers=reply.headers)
        state.received.append(json.loads(raw))
        return web.Response(status=200, text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", webhook)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.base = f"http://127.0.0.1:{server.port}"
    return state


@pytest.fixture
async def make_channel() -> AsyncIterator[Callable[..., SlackChannel]]:
    """SlackChannels with the given settings, closed after the test."""
    made: list[SlackChannel] = []

    def make(**settings: Any) -> SlackChannel:
        channel = SlackChannel(SlackSettings.model_validate(settings))
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
