"""Incident endpoints: list, detail, acknowledge, resolve, notes. Thin: parse, call, reply."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Connection

from remediator import appkeys
from remediator.api.auth import requires
from remediator.api.errors import ApiError, error_response, json_body, validation_details
from remediator.api.models import (
    AckRequest,
    ActionRun,
    Alert,
    Escalation,
    Incident,
    IncidentDetail,
    IncidentPage,
    KnownResolutionOut,
    NoteRequest,
    NotificationOut,
    RemediationJob,
    ResolveRequest,
    TimelineEntry,
)
from remediator.appkeys import PRINCIPAL
from remediator.config import Role
from remediator.errors import IncidentNotFoundError, InvalidTransitionError
from remediator.incidents.operations import IncidentOperations
from remediator.rules import Matcher, MatcherSyntaxError, parse_matcher
from remediator.store import escalations as escalation_store
from remediator.store import incidents as store
from remediator.store import jobs as job_store
from remediator.store import resolutions

M = TypeVar("M", bound=BaseModel)

MAX_LIMIT = 500
# A label-matcher filter is applied after the SQL filters; cap how far one page may scan.
MAX_SCAN = 5000


@requires(Role.viewer)
async def list_incidents(request: web.Request) -> web.Response:
    query = request.query
    try:
        limit = min(int(query.get("limit", "50")), MAX_LIMIT)
        before = _decode_cursor(query["cursor"]) if "cursor" in query else None
        matchers = [parse_matcher(text) for text in query.getall("match", [])]
        if limit < 1:
            raise ValueError("limit must be at least 1")
    except (ValueError, MatcherSyntaxError) as exc:
        return error_response(400, f"invalid query: {exc}")
    rows, next_before = await _page(request, limit, before, matchers)
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
    }
    return await request.app[appkeys.DATABASE].read(
        lambda conn: _scan(conn, filters, limit, before, matchers)
    )


def _scan(
    conn: Connection,
    filters: dict[str, list[str]],
    limit: int,
    before: int | None,
    matchers: list[Matcher],
) -> tuple[list[Any], int | None]:
    """One page, newest first, and the id to continue before (None at the end)."""
    # Without label matchers one SQL page is the answer; with them, scan in chunks.
    chunk = limit if not matchers else max(limit, 200)
    found: list[Any] = []
    scanned = 0
    while True:
        rows = store.list_incidents(conn, before_id=before, limit=chunk, **filters)
        for row in rows:
            scanned += 1
            before = row.id
            if all(m.matches(row.labels) for m in matchers):
                found.append(row)
                if len(found) == limit:
                    return found, row.id
        if len(rows) < chunk:
            return found, None  # no older incidents
        if scanned >= MAX_SCAN:
            return found, before  # a short page; the cursor continues the scan


@requires(Role.viewer)
async def get_incident(request: web.Request) -> web.Response:
    incident_id = _incident_id(request)
    detail = await request.app[appkeys.DATABASE].read(lambda conn: _detail(conn, incident_id))
    if detail is None:
        return error_response(404, f"incident {incident_id} does not exist")
    return json_body(detail.model_dump(mode="json"))


def _detail(conn: Connection, incident_id: int) -> IncidentDetail | None:
    row = store.get_incident(conn, incident_id)
    if row is None:
        return None
    return IncidentDetail(
        **Incident.model_validate(row).model_dump(),
        alerts=[Alert.model_validate(a) for a in store.alerts_of(conn, incident_id)],
        timeline=[TimelineEntry.model_validate(e) for e in store.timeline_of(conn, incident_id)],
        remediation=_remediation(conn, incident_id),
        escalations=_escalations(conn, incident_id),
        known_resolutions=[
            KnownResolutionOut(
                incident_id=found.incident_id,
                note=found.note,
                resolved_by=found.resolved_by,
                at=found.at,
                same_key=found.incident_key == row.key,
            )
            for found in resolutions.recent_for(conn, row)
        ],
    )


def _escalations(conn: Connection, incident_id: int) -> list[Escalation]:
    sent: dict[int, list[NotificationOut]] = {}
    for row in escalation_store.notifications_of(conn, incident_id):
        sent.setdefault(row.escalation_id, []).append(NotificationOut.model_validate(row))
    return [
        Escalation.model_validate(chain).model_copy(
            update={"notifications": sent.get(chain.id, [])}
        )
        for chain in escalation_store.escalations_of(conn, incident_id)
    ]


def _remediation(conn: Connection, incident_id: int) -> list[RemediationJob]:
    runs: dict[int, list[ActionRun]] = {}
    for run in job_store.runs_of(conn, incident_id):
        runs.setdefault(run.job_id, []).append(ActionRun.model_validate(run))
    return [
        RemediationJob.model_validate(job).model_copy(update={"runs": runs.get(job.id, [])})
        for job in job_store.jobs_of(conn, incident_id)
    ]


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
