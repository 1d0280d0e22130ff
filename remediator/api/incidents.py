"""Incident endpoints: list, detail, acknowledge, resolve, notes. Thin: parse, call, reply."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from remediator import appkeys
from remediator.api.auth import requires
from remediator.api.errors import ApiError, error_response, json_body, validation_details
from remediator.api.models import (
    AckRequest,
    Incident,
    IncidentPage,
    NoteRequest,
    ResolveRequest,
)
from remediator.api.reads import incident_detail, page_of_incidents
from remediator.appkeys import PRINCIPAL
from remediator.config import Role
from remediator.errors import IncidentNotFoundError, InvalidTransitionError
from remediator.incidents.operations import IncidentOperations
from remediator.reports.period import parse_moment
from remediator.rules import Matcher, MatcherSyntaxError, parse_matcher

M = TypeVar("M", bound=BaseModel)

MAX_LIMIT = 500


@requires(Role.viewer)
async def list_incidents(request: web.Request) -> web.Response:
    query = request.query
    try:
        limit = min(int(query.get("limit", "50")), MAX_LIMIT)
        before = _decode_cursor(query["cursor"]) if "cursor" in query else None
        matchers = [parse_matcher(text) for text in query.getall("match", [])]
        if limit < 1:
            raise ValueError("limit must be at least 1")
        rows, next_before = await _page(request, limit, before, matchers)
    except (ValueError, MatcherSyntaxError) as exc:
        return error_response(400, f"invalid query: {exc}")
    page = IncidentPage(
        incidents=[Incident.model_validate(row) for row in rows],
        next_cursor=_encode_cursor(next_before) if next_before is not None else None,
    )
    return json_body(page.model_dump(mode="json"))


async def _page(
    request: web.Request, limit: int, before: int | None, matchers: list[Matcher]
) -> tuple[list[Any], int | None]:
    query = request.query
    filters = {
        "states": query.getall("state", []),
        "priorities": query.getall("priority", []),
        "rules": query.getall("rule", []),
        "opened_from": _moment(query, "from", end_of_day=False),
        "opened_to": _moment(query, "to", end_of_day=True),
    }
    return await request.app[appkeys.DATABASE].read(
        lambda conn: page_of_incidents(conn, filters, limit, before, matchers)
    )


@requires(Role.viewer)
async def get_incident(request: web.Request) -> web.Response:
    incident_id = _incident_id(request)
    detail = await request.app[appkeys.DATABASE].read(
        lambda conn: incident_detail(conn, incident_id)
    )
    if detail is None:
        return error_response(404, f"incident {incident_id} does not exist")
    return json_body(detail.model_dump(mode="json"))


@requires(Role.operator)
async def acknowledge(request: web.Request) -> web.Response:
    comment = (await parse_body(request, AckRequest)).comment
    return await _operate(request, lambda ops, i, user: ops.acknowledge(i, user, comment))


@requires(Role.operator)
async def resolve(request: web.Request) -> web.Response:
    reason = (await parse_body(request, ResolveRequest)).reason
    return await _operate(request, lambda ops, i, user: ops.resolve(i, user, reason))


@requires(Role.operator)
async def add_note(request: web.Request) -> web.Response:
    text = (await parse_body(request, NoteRequest)).text
    response = await _operate(request, lambda ops, i, user: ops.add_note(i, user, text))
    if response.status == 200:
        response.set_status(201)
    return response


Operation = Callable[[IncidentOperations, int, str], Awaitable[None]]


async def _operate(request: web.Request, operation: Operation) -> web.Response:
    """Run a human action as the requesting principal; answer with the incident after it."""
    incident_id = _incident_id(request)
    operations = IncidentOperations(
        request.app[appkeys.DATABASE],
        on_escalation_change=request.app[appkeys.ESCALATION].wake,
    )
    try:
        await operation(operations, incident_id, request[PRINCIPAL])
    except IncidentNotFoundError as exc:
        return error_response(404, str(exc))
    except InvalidTransitionError as exc:
        return error_response(409, str(exc))
    return await get_incident(request)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as `model` (an empty body is `{}`); 400 naming the field."""
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise ApiError(400, "invalid request body", validation_details(exc)) from None


def _incident_id(request: web.Request) -> int:
    # The route only matches digits, so this cannot fail.
    return int(request.match_info["id"])


def _moment(query: Any, name: str, *, end_of_day: bool) -> datetime | None:
    text = query.get(name)
    return parse_moment(name, text, end_of_day=end_of_day) if text else None


def _encode_cursor(before_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{before_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, value = text.partition(":")
        if version != "v1":
            raise ValueError
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError(f"cursor {cursor!r} is not one this API returned") from None
