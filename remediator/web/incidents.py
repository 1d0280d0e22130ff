"""The Incidents list and the Incident page, and the operator controls on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.engine import Connection

from remediator import appkeys
from remediator.api.models import Incident
from remediator.api.reads import incident_detail, page_of_incidents
from remediator.config import Role
from remediator.errors import IncidentNotFoundError, InvalidTransitionError
from remediator.incidents.operations import IncidentOperations
from remediator.incidents.priority import Priority
from remediator.incidents.states import IncidentState
from remediator.reports.period import parse_moment
from remediator.rules import Matcher, MatcherSyntaxError, parse_matcher
from remediator.store import jobs as job_store
from remediator.web.access import USER, page
from remediator.web.render import render, render_error
from remediator.web.sla import sla_marks

PAGE_SIZE = 50
REFRESH_SECONDS = 5
_FILTERS = ("state", "priority", "rule", "match", "from", "to")


@page(Role.viewer)
async def incident_list(request: web.Request) -> web.Response:
    query = request.query
    try:
        filters, matchers = _filters(query)
        before = int(query["before"]) if query.get("before", "").isdigit() else None
    except (ValueError, MatcherSyntaxError) as exc:
        return _list_page(request, [], None, error=str(exc), status=400)
    rows, next_before = await request.app[appkeys.DATABASE].read(
        lambda conn: page_of_incidents(conn, filters, PAGE_SIZE, before, matchers)
    )
    incidents = [Incident.model_validate(row) for row in rows]
    return _list_page(request, incidents, next_before)


def _list_page(
    request: web.Request,
    incidents: list[Incident],
    next_before: int | None,
    *,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    query = request.query
    kept = [(k, v) for k, v in query.items() if k in _FILTERS and v]
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "incidents": incidents,
        "marks": {i.id: sla_marks(i, now) for i in incidents},
        "error": error,
        "older_url": f"/incidents?{urlencode([*kept, ('before', next_before)])}"
        if next_before is not None
        else None,
        "live_url": f"/incidents?{urlencode([*query.items(), ('partial', '1')])}",
        "refresh_seconds": REFRESH_SECONDS,
        "selected": {name: query.getall(name, []) for name in _FILTERS},
        "states": [s.value for s in IncidentState],
        "priorities": [p.value for p in Priority],
        "rules": [rule.name for rule in request.app[appkeys.RULES].current.rules],
    }
    template = "_incident_table.html" if query.get("partial") else "incidents.html"
    return render(request, template, user=request[USER], status=status, **context)


def _filters(query: Any) -> tuple[dict[str, Any], list[Matcher]]:
    matchers = [parse_matcher(text) for text in query.getall("match", []) if text.strip()]
    filters = {
        "states": [v for v in query.getall("state", []) if v],
        "priorities": [v for v in query.getall("priority", []) if v],
        "rules": query.getall("rule", []) if any(query.getall("rule", [])) else [],
        "opened_from": _local_moment("from", query.get("from")),
        "opened_to": _local_moment("to", query.get("to")),
    }
    return filters, matchers


def _local_moment(name: str, text: str | None) -> datetime | None:
    """A time from an `<input type=datetime-local>` (no zone; the form says UTC) or a date."""
    if not text:
        return None
    if len(text) in (16, 19) and "T" in text:  # 2026-11-21T10:00[:00]
        text += "Z"
    return parse_moment(name, text, end_of_day=name == "to")


@page(Role.viewer)
async def incident_page(request: web.Request) -> web.Response:
    incident_id = int(request.match_info["id"])
    return await _incident_page(request, incident_id)


async def _incident_page(
    request: web.Request, incident_id: int, *, error: str | None = None, status: int = 200
) -> web.Response:
    detail = await request.app[appkeys.DATABASE].read(
        lambda conn: incident_detail(conn, incident_id)
    )
    if detail is None:
        return render_error(
            request, 404, f"incident {incident_id} does not exist", user=request[USER]
        )
    template = "_incident_live.html" if request.query.get("partial") else "incident.html"
    return render(
        request,
        template,
        user=request[USER],
        status=status,
        incident=detail,
        marks=sla_marks(detail, datetime.now(UTC)),
        error=error,
        done=request.query.get("done"),
        live_url=f"/incidents/{incident_id}?partial=1",
        refresh_seconds=REFRESH_SECONDS,
    )


Operation = Callable[[IncidentOperations, int, str, Any], Awaitable[None]]


def _operation(action: str, operation: Operation) -> Any:
    @page(Role.operator)
    async def handler(request: web.Request) -> web.StreamResponse:
        incident_id = int(request.match_info["id"])
        form = await request.post()
        operations = IncidentOperations(
            request.app[appkeys.DATABASE],
            on_escalation_change=request.app[appkeys.ESCALATION].wake,
        )
        try:
            await operation(operations, incident_id, request[USER].name, form)
        except IncidentNotFoundError as exc:
            return render_error(request, 404, str(exc), user=request[USER])
        except InvalidTransitionError as exc:
            return await _incident_page(request, incident_id, error=str(exc), status=409)
        except ValueError as exc:
            return await _incident_page(request, incident_id, error=str(exc), status=400)
        raise web.HTTPSeeOther(f"/incidents/{incident_id}?done={action}")

    handler.__name__ = f"{action}_incident"
    return handler


def _text(form: Any, name: str) -> str | None:
    value = str(form.get(name, "")).strip()
    return value or None


async def _note(ops: IncidentOperations, incident_id: int, user: str, form: Any) -> None:
    text = _text(form, "text")
    if text is None:
        raise ValueError("the note is empty: write what you found or did")
    await ops.add_note(incident_id, user, text)


acknowledge = _operation(
    "acknowledged", lambda ops, i, user, form: ops.acknowledge(i, user, _text(form, "comment"))
)
resolve = _operation(
    "resolved", lambda ops, i, user, form: ops.resolve(i, user, _text(form, "reason"))
)
add_note = _operation("noted", _note)


def _decision(approve: bool) -> Any:
    @page(Role.operator)
    async def handler(request: web.Request) -> web.StreamResponse:
        job_id = int(request.match_info["id"])
        note = _text(await request.post(), "note")
        runner = request.app[appkeys.RUNNER]
        by = request[USER].name
        try:
            job = await (runner.approve if approve else runner.reject)(job_id, by, note)
        except LookupError as exc:
            return render_error(request, 404, str(exc), user=request[USER])
        except ValueError as exc:
            incident_id = await _incident_of_job(request, job_id)
            return await _incident_page(request, incident_id, error=str(exc), status=409)
        request.app[appkeys.ESCALATION].wake()
        done = "approved" if approve else "rejected"
        raise web.HTTPSeeOther(f"/incidents/{job.incident_id}?done={done}")

    handler.__name__ = "approve_job" if approve else "reject_job"
    return handler


async def _incident_of_job(request: web.Request, job_id: int) -> int:
    def find(conn: Connection) -> int:
        job = job_store.get_job(conn, job_id)
        return int(job.incident_id) if job is not None else 0

    return await request.app[appkeys.DATABASE].read(find)


approve_job = _decision(approve=True)
reject_job = _decision(approve=False)
