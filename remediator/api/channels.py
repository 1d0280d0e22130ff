"""Paging systems reporting back: `POST /api/v1/channels/{name}/events`.

No API token: the channel plugin verifies the request (e.g. PagerDuty's signature over the
raw body) and returns the acknowledgements and resolutions it carries, which are applied
to the incident its dedup key names, as the person the system names.
"""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from remediator import appkeys
from remediator.api.errors import error_response, json_body
from remediator.errors import IncidentNotFoundError, InvalidTransitionError
from remediator.incidents.operations import IncidentOperations
from remediator.plugins import InboundChannel, InboundEvent, InboundRejected

MAX_BODY_BYTES: Final = 1024 * 1024
_DEDUP_KEY: Final = re.compile(r"remediator-(\d+)")


async def channel_events(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    channel = request.app[appkeys.CHANNELS].get(name)
    if channel is None:
        return error_response(404, f"no channel named {name!r} is configured")
    if not isinstance(channel, InboundChannel):
        return error_response(404, f"channel {name!r} does not take events")
    body = await request.content.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return error_response(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        events = channel.receive(body, request.headers)
    except InboundRejected as exc:
        return error_response(exc.status, exc.message)
    ops = IncidentOperations(
        request.app[appkeys.DATABASE],
        on_escalation_change=request.app[appkeys.ESCALATION].wake,
    )
    applied = [await _apply(ops, name, event) for event in events]
    return json_body({"received": len(events), "applied": sum(applied)})


async def _apply(ops: IncidentOperations, channel: str, event: InboundEvent) -> bool:
    """Apply one event; False when it is not ours or already done (never an error: the
    system would retry what we cannot change)."""
    found = _DEDUP_KEY.fullmatch(event.dedup_key)
    if found is None:
        return False
    incident_id = int(found[1])
    user = f"{event.actor} (via {channel})"
    try:
        if event.action == "acknowledge":
            await ops.acknowledge(incident_id, user, event.note or None)
        else:
            await ops.resolve(incident_id, user, event.note or None)
    except (IncidentNotFoundError, InvalidTransitionError):
        return False
    return True
