"""`POST /api/v1/webhooks/alertmanager`: parse, validate, commit, reply.

Alertmanager retries on 5xx and network errors and gives up on 4xx. So 4xx is kept for
bodies that will never become valid (bad JSON, wrong shape, too large, wrong type), and
anything that went wrong on our side (the database) answers 503: the alerts come again.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from remediator import appkeys
from remediator.api.auth import webhook_auth
from remediator.api.errors import error_response, json_body, validation_details
from remediator.intake.committer import IntakeClosedError
from remediator.intake.model import WebhookBody, events_from

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


@webhook_auth
async def alertmanager_webhook(request: web.Request) -> web.StreamResponse:
    metrics = request.app[appkeys.METRICS]
    started = time.perf_counter()
    response = await _handle(request)
    metrics.webhook_duration.observe(time.perf_counter() - started)
    metrics.webhook_requests.labels(str(response.status)).inc()
    return response


async def _handle(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        return error_response(
            415, f"content type {request.content_type!r} is not accepted: send application/json"
        )
    limit = request.app[appkeys.CONFIG].intake.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _too_large(limit)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _too_large(limit)
    try:
        body = WebhookBody.model_validate_json(raw)
    except ValidationError as exc:
        return error_response(
            400, "the body is not a valid Alertmanager webhook (version 4)", validation_details(exc)
        )
    events = events_from(body)
    try:
        stored = await request.app[appkeys.COMMITTER].submit(events)
    except (SQLAlchemyError, OSError, IntakeClosedError) as exc:
        log.error("could not store %d alerts, asking Alertmanager to retry: %s", len(events), exc)
        return error_response(
            503,
            "alerts could not be stored; Alertmanager will retry",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return json_body(
        {"received": len(events), "stored": stored, "duplicates": len(events) - stored}
    )


def _too_large(limit: int) -> web.Response:
    return error_response(
        413,
        f"body larger than intake.max_body_bytes ({limit} bytes); raise the limit or "
        "lower Alertmanager's max_alerts for this receiver",
    )
