"""The PagerDuty channel: one Events API v2 event per delivery, through one aiohttp session.

Alert data (title, labels, annotations, attempt summaries) is untrusted; it only ever
becomes JSON strings in the event, which `json.dumps` escapes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
from pydantic import BaseModel

from remediator.plugins import (
    AttemptSummary,
    DeliveryFailed,
    DeliveryResult,
    InboundEvent,
    InboundRejected,
    KnownResolution,
    Notification,
    PluginError,
    retry_after_seconds,
)

from .model import PagerDutySettings
from .webhooks import events_from, summary_suffix, verify

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_SUMMARY_CHARS",
    "PagerDutyChannel",
    "build_event",
    "create",
    "encode_event",
]

# Limits from the Events API v2 documentation.
MAX_SUMMARY_CHARS: Final = 1024
MAX_EVENT_BYTES: Final = 512 * 1024
# Our own caps, so that one chatty attempt cannot push the event over MAX_EVENT_BYTES.
_MAX_TEXT_CHARS: Final = 4096
_MAX_ATTEMPT_CHARS: Final = 1024
_MAX_NOTE_CHARS: Final = 1024
_MAX_RESOLVED_BY_CHARS: Final = 256
_MAX_KNOWN: Final = 10
_MAX_READ_BYTES: Final = 64 * 1024
_SHOWN_BODY_CHARS: Final = 500
_CLIENT: Final = "remediator"
_HEADERS: Final = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": _CLIENT,
}
# What an event keeps of custom_details when the full one is over MAX_EVENT_BYTES
# (known_resolutions only when there are some).
_SLIM_DETAILS: Final = (
    "priority",
    "state",
    "rule",
    "reason",
    "runbook",
    "incident_url",
    "known_resolutions",
)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(moment: datetime) -> str:
    # The core's datetimes are UTC; a naive one is taken as UTC rather than local time.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="milliseconds")


def _is_url(text: str | None) -> bool:
    return bool(text) and str(text).startswith(("https://", "http://"))


def _attempt(attempt: AttemptSummary) -> dict[str, Any]:
    return {
        "action": attempt.action,
        "attempt": attempt.attempt,
        "outcome": attempt.outcome,
        "summary": _shorten(attempt.summary, _MAX_ATTEMPT_CHARS),
        "at": _iso(attempt.at),
    }


def _known(known: KnownResolution) -> dict[str, Any]:
    return {
        "note": _shorten(known.note, _MAX_NOTE_CHARS),
        "resolved_by": _shorten(known.resolved_by, _MAX_RESOLVED_BY_CHARS),
        "at": _iso(known.at),
        "incident_id": known.incident_id,
        "same_key": known.same_key,
    }


def _custom_details(notification: Notification) -> dict[str, Any]:
    details = {
        "priority": notification.priority,
        "state": notification.state,
        "rule": notification.rule,
        "reason": _shorten(notification.reason, _MAX_TEXT_CHARS),
        "runbook": notification.runbook,
        "incident_url": notification.incident_url,
        "labels": dict(notification.labels),
        "annotations": dict(notification.annotations),
        "attempts": [_attempt(attempt) for attempt in notification.attempts],
    }
    if notification.known_resolutions:
        # What fixed earlier incidents like this one, newest first: bounded, so that it
        # survives the slimming below.
        known = notification.known_resolutions[:_MAX_KNOWN]
        details["known_resolutions"] = [_known(one) for one in known]
    return details


def _links(notification: Notification) -> list[dict[str, str]]:
    links = []
    if _is_url(notification.incident_url):
        links.append({"href": notification.incident_url, "text": "Incident in remediator"})
    if notification.approval_url and _is_url(notification.approval_url):
        links.append({"href": notification.approval_url, "text": "Approve or reject remediation"})
    if notification.acknowledge_url and _is_url(notification.acknowledge_url):
        # PagerDuty's own Acknowledge reaches remediator only with webhooks; this link always.
        links.append({"href": notification.acknowledge_url, "text": "Acknowledge in remediator"})
    if notification.runbook and _is_url(notification.runbook):
        links.append({"href": notification.runbook, "text": "Runbook"})
    return links


def _payload(notification: Notification, settings: PagerDutySettings) -> dict[str, Any]:
    # PagerDuty rejects a blank summary or source, so both fall back to something true.
    title = notification.title.strip() or f"remediator incident {notification.incident_id}"
    source = settings.source or notification.labels.get("instance") or _CLIENT
    # With webhooks, the incident's title must name our key: V3 may not carry it otherwise.
    suffix = summary_suffix(notification.dedup_key) if settings.webhooks_enabled else ""
    payload: dict[str, Any] = {
        "summary": _shorten(title, MAX_SUMMARY_CHARS - len(suffix)) + suffix,
        "source": source,
        "severity": settings.severity(notification.priority),
        "timestamp": _iso(notification.opened_at),
        "custom_details": _custom_details(notification),
    }
    alertname = notification.labels.get("alertname")
    if alertname:
        payload["class"] = alertname
    return payload


def build_event(
    notification: Notification, settings: PagerDutySettings, routing_key: str
) -> dict[str, Any]:
    """The Events API v2 event for `notification`; acknowledge and resolve carry only the
    routing key, dedup_key and action, as the API expects."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": notification.event,
        "dedup_key": notification.dedup_key,
    }
    if notification.event != "trigger":
        return event
    event["payload"] = _payload(notification, settings)
    event["links"] = _links(notification)
    event["client"] = _CLIENT
    if _is_url(notification.incident_url):
        event["client_url"] = notification.incident_url
    return event


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The event as JSON; over MAX_EVENT_BYTES, custom_details keep only their short fields
    and the known resolutions (a page without the labels beats no page)."""
    data = _dumps(event)
    if len(data) <= MAX_EVENT_BYTES or "payload" not in event:
        return data
    details = event["payload"]["custom_details"]
    slim = {key: details[key] for key in _SLIM_DETAILS if key in details}
    slim["omitted"] = "labels, annotations and attempts: the event exceeded 512 KB"
    return _dumps({**event, "payload": {**event["payload"], "custom_details": slim}})


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def _read_text(response: aiohttp.ClientResponse) -> str:
    data = await response.content.read(_MAX_READ_BYTES)
    return data.decode("utf-8", errors="replace")


class PagerDutyChannel:
    """Delivers notifications to one PagerDuty integration (routing key)."""

    def __init__(self, settings: PagerDutySettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def send(self, notification: Notification) -> DeliveryResult:
        """Send one event; raise DeliveryFailed (retryable for 429, 5xx, network errors)."""
        label = f"pagerduty {notification.event} {notification.dedup_key}"
        body = encode_event(build_event(notification, self._settings, self._routing_key(label)))
        status, text, retry_after = await self._post(label, body)
        return _outcome(label, status, text, retry_after, notification.dedup_key)

    def receive(self, body: bytes, headers: Mapping[str, str]) -> list[InboundEvent]:
        """The acknowledgement or resolution in one V3 webhook, once its signature checks
        out (see webhooks.py); InboundRejected 404 without a secret, 401 for a bad
        signature, 400 for a body that is not a V3 envelope."""
        verify(body, headers, self._webhook_secret())
        return events_from(body)

    def _webhook_secret(self) -> str:
        try:
            secret = self._settings.read_webhook_secret()
        except PluginError as error:
            # 5xx: PagerDuty retries, and a fixed deployment still gets the event.
            raise InboundRejected(503, f"pagerduty webhooks: {error}") from None
        if not secret:
            # An empty key would make every signature forgeable: refuse, as if unset.
            raise InboundRejected(
                404,
                "pagerduty webhooks are not configured: set webhook_secret, "
                "webhook_secret_env or webhook_secret_file",
            )
        return secret

    async def close(self) -> None:
        """Close the session, if one was opened; a later `send` opens a new one."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _routing_key(self, label: str) -> str:
        try:
            key = self._settings.read_routing_key()
        except PluginError as error:
            # A missing secret stays missing until someone fixes the deployment.
            raise DeliveryFailed(f"{label} → {error}", retryable=False) from None
        if not key.strip():
            raise DeliveryFailed(f"{label} → the routing key is empty", retryable=False)
        return key

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use so that it belongs to the loop `send` runs in.
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self._settings.timeout.total_seconds())
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _post(self, label: str, body: bytes) -> tuple[int, str, float | None]:
        try:
            # Redirects are not followed: they would resend the routing key elsewhere.
            async with self._client().post(
                self._settings.url, data=body, headers=_HEADERS, allow_redirects=False
            ) as response:
                text = await _read_text(response)
                return (
                    response.status,
                    text,
                    retry_after_seconds(response.headers.get("Retry-After")),
                )
        except TimeoutError:
            seconds = self._settings.timeout.total_seconds()
            raise DeliveryFailed(
                f"{label} → timed out after {seconds:g}s", retryable=True
            ) from None
        except aiohttp.ClientConnectorCertificateError as error:
            raise DeliveryFailed(f"{label} → TLS certificate not trusted: {error}") from None
        except aiohttp.ClientError as error:
            message = str(error) or type(error).__name__
            raise DeliveryFailed(f"{label} → {message}", retryable=True) from None


def _outcome(
    label: str, status: int, text: str, retry_after: float | None, dedup_key: str
) -> DeliveryResult:
    """The result of a response, or the DeliveryFailed it means (see the README's table)."""
    body = _json_object(text)
    message = str(body.get("message") or "").strip()
    if 200 <= status < 300:
        reference = str(body.get("dedup_key") or dedup_key)
        return DeliveryResult(summary=f"{label} → {status} {message}".rstrip(), reference=reference)
    if status == 400:
        errors = body.get("errors")
        detail = "; ".join(map(str, errors)) if isinstance(errors, list) else ""
        shown = ": ".join(part for part in (message or "invalid event", detail) if part)
        raise DeliveryFailed(f"{label} → 400 {shown}", retryable=False)
    shown = message or _shorten(text.strip(), _SHOWN_BODY_CHARS)
    summary = f"{label} → {status} {shown}".rstrip()
    if status == 429 or status >= 500:
        raise DeliveryFailed(summary, retryable=True, retry_after=retry_after)
    raise DeliveryFailed(summary, retryable=False)


def create(settings: BaseModel) -> PagerDutyChannel:
    """The channel for one validated `channels.<name>` section; PluginError if its routing
    key or webhook secret cannot be read now (a page is the wrong moment to find that out)."""
    if not isinstance(settings, PagerDutySettings):
        raise PluginError(f"pagerduty: expected PagerDutySettings, got {type(settings).__name__}")
    settings.read_routing_key()
    settings.read_webhook_secret()
    return PagerDutyChannel(settings)
