"""Signed links: GET shows what it will do, POST acknowledges (or approves / rejects a job).

No API token: the link's signature and expiry are the credential (see
`remediator.escalation.links`). The pages are plain HTML with every value escaped.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from aiohttp import web

from remediator import appkeys
from remediator.errors import IncidentNotFoundError, InvalidTransitionError
from remediator.escalation.links import link_problem
from remediator.incidents.operations import IncidentOperations
from remediator.store import incidents as store
from remediator.store import jobs as job_store

LINK_USER = "acknowledge link"
LINK_APPROVER = "approval link"


async def ack_link_page(request: web.Request) -> web.Response:
    incident_id, problem = _checked(request)
    if problem:
        return _page(403, "Cannot acknowledge", problem)
    row = await request.app[appkeys.DATABASE].read(lambda c: store.get_incident(c, incident_id))
    if row is None:
        return _page(404, "No such incident", f"incident {incident_id} does not exist")
    body = (
        f"<p>Incident {incident_id} ({html.escape(row.priority)}, {html.escape(row.state)}): "
        f"{html.escape(row.title)}</p>"
        '<form method="post"><button type="submit">Acknowledge</button></form>'
    )
    return _page(200, f"Acknowledge incident {incident_id}?", body, raw=True)


async def ack_link(request: web.Request) -> web.Response:
    incident_id, problem = _checked(request)
    if problem:
        return _page(403, "Cannot acknowledge", problem)
    ops = IncidentOperations(
        request.app[appkeys.DATABASE],
        on_escalation_change=request.app[appkeys.ESCALATION].wake,
    )
    try:
        await ops.acknowledge(incident_id, LINK_USER, None)
    except IncidentNotFoundError as exc:
        return _page(404, "No such incident", str(exc))
    except InvalidTransitionError as exc:
        return _page(409, "Nothing to acknowledge", str(exc))
    return _page(200, f"Incident {incident_id} acknowledged", "Escalation has stopped.")


def _checked(request: web.Request, purpose: str = "ack") -> tuple[int, str | None]:
    incident_id = int(request.match_info["id"])
    problem = link_problem(
        request.app[appkeys.CONFIG],
        incident_id,
        request.query.get("expires", ""),
        request.query.get("signature", ""),
        datetime.now(UTC),
        purpose,
    )
    return incident_id, problem


def _page(status: int, title: str, body: str, *, raw: bool = False) -> web.Response:
    content = body if raw else f"<p>{html.escape(body)}</p>"
    text = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{content}</body></html>"
    )
    return web.Response(status=status, text=text, content_type="text/html")


async def approval_link_page(request: web.Request) -> web.Response:
    job_id, problem = _checked(request, "approve")
    if problem:
        return _page(403, "Cannot decide", problem)
    job = await request.app[appkeys.DATABASE].read(lambda c: job_store.get_job(c, job_id))
    if job is None:
        return _page(404, "No such job", f"remediation job {job_id} does not exist")
    body = (
        f"<p>Rule {html.escape(job.rule)} wants to run remediation job {job_id} for incident "
        f"{job.incident_id} (state: {html.escape(job.state)}).</p>"
        '<form method="post"><button type="submit" name="decision" value="approve">Approve'
        '</button> <button type="submit" name="decision" value="reject">Reject</button></form>'
    )
    return _page(200, f"Approve remediation job {job_id}?", body, raw=True)


async def approval_link(request: web.Request) -> web.Response:
    job_id, problem = _checked(request, "approve")
    if problem:
        return _page(403, "Cannot decide", problem)
    decision = (await request.post()).get("decision")
    if decision not in ("approve", "reject"):
        return _page(400, "No decision", "press Approve or Reject on the link's page")
    runner = request.app[appkeys.RUNNER]
    try:
        if decision == "approve":
            await runner.approve(job_id, LINK_APPROVER, None)
        else:
            await runner.reject(job_id, LINK_APPROVER, None)
    except LookupError as exc:
        return _page(404, "No such job", str(exc))
    except ValueError as exc:
        return _page(409, "Already decided", str(exc))
    request.app[appkeys.ESCALATION].wake()
    done = "approved: it runs now" if decision == "approve" else "rejected: the incident escalates"
    return _page(200, f"Job {job_id} {decision}d", f"Remediation job {job_id} {done}.")
