"""The Opsgenie channel: create, acknowledge and close alerts by alias (Alert API v2).

Alert data (title, labels, annotations, attempt summaries) and the notes humans wrote about
earlier resolutions are untrusted; they only ever become JSON strings in the request body,
which `json.dumps` escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel
from yarl import URL

from remediator.plugins import (
    DeliveryFailed,
    DeliveryResult,
    KnownResolution,
    Notification,
    PluginError,
    retry_after_seconds,
)

from .model import OpsgenieSettings

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_DETAILS_CHARS",
    "MAX_MESSAGE_CHARS",
    "OpsgenieChannel",
    "build_action",
    "build_alert",
    "create",
]

# Limits from the Alert API documentation.
MAX_MESSAGE_CHARS: Final = 130
MAX_DESCRIPTION_CHARS: Final = 15_000
MAX_DETAILS_CHARS: Final = 8_000  # keys and values together
MAX_ENTITY_CHARS: Final = 512
MAX_NOTE_CHARS: Final = 25_000
_MAX_DETAIL_VALUE_CHARS: Final = 1_000
_MAX_KNOWN: Final = 5
_MAX_KNOWN_NOTE_CHARS: Final = 1_000
_MAX_RESOLVED_BY_CHARS: Final = 200
_MAX_READ_BYTES: Final = 64 * 1024
_SHOWN_BODY_CHARS: Final = 500
_USER: Final = "remediator"
# Visible text and tabs only: CR/LF in a key would inject headers.
_BAD_HEADER_CHARS: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Which alert action each notification event is, and the path suffix it posts to.
_ACTIONS: Final = {"trigger": "create", "acknowledge": "acknowledge", "resolve": "close"}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(moment: datetime) -> str:
    # The core's datetimes are UTC; a naive one is taken as UTC rather than local time.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


def _known_line(known: KnownResolution) -> str:
    """One known resolution as text; the note's further lines are indented, so that a note
    cannot pass for a line of the description's own (a forged `Incident: …` link)."""
    where = "same service/host" if known.same_key else "same rule"
    by = _shorten(" ".join(known.resolved_by.split()), _MAX_RESOLVED_BY_CHARS) or "someone"
    note = _shorten(known.note.strip(), _MAX_KNOWN_NOTE_CHARS)
    note = "\n    ".join(line for line in note.splitlines() if line.strip())
    return f"incident {known.incident_id} ({where}), resolved by {by} at {_iso(known.at)}: {note}"


def _description(notification: Notification) -> str:
    """The alert's description as plain text: why, what was tried, where to look."""
    lines = [
        notification.reason,
        "",
        f"Priority: {notification.priority} · State: {notification.state} · "
        f"Rule: {notification.rule or '-'}",
        f"Incident: {notification.incident_url}",
    ]
    if notification.runbook:
        lines.append(f"Runbook: {notification.runbook}")
    if notification.approval_url:
        lines.append(f"Approve or reject the remediation: {notification.approval_url}")
    if notification.acknowledge_url:
        lines.append(f"Acknowledge in remediator: {notification.acknowledge_url}")
    if notification.known_resolutions:
        # Before the attempts and labels, so that many of those do not cut it off.
        lines += ["", "Known resolutions (newest first):"]
        lines += [f"- {_known_line(k)}" for k in notification.known_resolutions[:_MAX_KNOWN]]
    if notification.attempts:
        lines += ["", "What automation tried:"]
        lines += [
            f"- {a.action}, attempt {a.attempt}: {a.outcome} at {_iso(a.at)}: {a.summary}"
            for a in notification.attempts
        ]
    lines += ["", "Labels:"] + [f"  {k}={v}" for k, v in sorted(notification.labels.items())]
    if notification.annotations:
        lines += ["", "Annotations:"]
        lines += [f"  {k}: {v}" for k, v in sorted(notification.annotations.items())]
    return "\n".join(lines)


def _within_budget(items: Iterable[tuple[str, str]], budget: int) -> dict[str, str]:
    """The items, in order, that fit `budget` characters of keys and values together;
    later ones that do not fit are left out (the description still has them)."""
    details: dict[str, str] = {}
    for key, value in items:
        value = _shorten(value, _MAX_DETAIL_VALUE_CHARS)
        if key in details or len(key) + len(value) > budget:
            continue
        details[key] = value
        budget -= len(key) + len(value)
    return details


def _details(notification: Notification) -> dict[str, str]:
    # Ours first so that they survive the budget; labels keep their names, which makes
    # them usable in Opsgenie's alert policies (extra properties).
    ours = {
        "remediator_incident": notification.incident_url,
        "remediator_priority": notification.priority,
        "remediator_state": notification.state,
        "remediator_rule": notification.rule or "",
        "remediator_runbook": notification.runbook or "",
        "remediator_attempts": str(len(notification.attempts)),
        # The newest known resolution leads; the value is cut to _MAX_DETAIL_VALUE_CHARS.
        "remediator_known_resolutions": "\n".join(
            _known_line(k) for k in notification.known_resolutions[:_MAX_KNOWN]
        ),
    }
    items = [(k, v) for k, v in ours.items() if v] + sorted(notification.labels.items())
    return _within_budget(items, MAX_DETAILS_CHARS)


def build_alert(notification: Notification, settings: OpsgenieSettings) -> dict[str, Any]:
    """The Create Alert request body for a trigger."""
    message = notification.title.strip() or f"remediator incident {notification.incident_id}"
    alert: dict[str, Any] = {
        "message": _shorten(message, MAX_MESSAGE_CHARS),
        "alias": notification.dedup_key,
        "description": _shorten(_description(notification), MAX_DESCRIPTION_CHARS),
        "details": _details(notification),
        "priority": settings.priority(notification.priority),
        "source": settings.source,
    }
    if settings.tags:
        alert["tags"] = list(settings.tags)
    if settings.responders:
        alert["responders"] = [responder.as_json() for responder in settings.responders]
    entity = notification.labels.get("instance") or notification.labels.get("service")
    if entity:
        alert["entity"] = _shorten(entity, MAX_ENTITY_CHARS)
    return alert


def build_action(notification: Notification, settings: OpsgenieSettings) -> dict[str, Any]:
    """The Acknowledge or Close Alert request body."""
    body = {"user": _USER, "source": settings.source}
    if notification.reason:
        body["note"] = _shorten(notification.reason, MAX_NOTE_CHARS)
    return body


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def _read_text(response: aiohttp.ClientResponse) -> str:
    data = await response.content.read(_MAX_READ_BYTES)
    return data.decode("utf-8", errors="replace")


class OpsgenieChannel:
    """Delivers notifications as alerts of one Opsgenie API integration."""

    def __init__(self, settings: OpsgenieSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def send(self, notification: Notification) -> DeliveryResult:
        """Create, acknowledge or close the alert whose alias is the incident's dedup_key;
        raise DeliveryFailed (retryable for 429, 5xx, network errors)."""
        action = _ACTIONS[notification.event]
        label = f"opsgenie {action} {notification.dedup_key}"
        headers = self._headers(label)
        if action == "create":
            url = self._endpoint("v2", "alerts")
            body = build_alert(notification, self._settings)
        else:
            url = self._endpoint("v2", "alerts", notification.dedup_key, action)
            url = url.with_query(identifierType="alias")
            body = build_action(notification, self._settings)
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        status, text, retry_after = await self._post(label, url, headers, data)
        return _outcome(label, status, text, retry_after)

    async def close(self) -> None:
        """Close the session, if one was opened; a later `send` opens a new one."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _endpoint(self, *segments: str) -> URL:
        # Every segment is percent-encoded, `/` included, so an alias stays one segment.
        base = str(URL(self._settings.url)).rstrip("/")
        path = "/".join(quote(segment, safe="") for segment in segments)
        return URL(f"{base}/{path}", encoded=True)

    def _headers(self, label: str) -> dict[str, str]:
        try:
            key = self._settings.read_api_key()
        except PluginError as error:
            # A missing secret stays missing until someone fixes the deployment.
            raise DeliveryFailed(f"{label} → {error}", retryable=False) from None
        if not key.strip():
            raise DeliveryFailed(f"{label} → the API key is empty", retryable=False)
        if _BAD_HEADER_CHARS.search(key):
            raise DeliveryFailed(f"{label} → the API key contains a line break", retryable=False)
        return {
            "Authorization": f"GenieKey {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER,
        }

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use so that it belongs to the loop `send` runs in.
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self._settings.timeout.total_seconds())
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _post(
        self, label: str, url: URL, headers: dict[str, str], data: bytes
    ) -> tuple[int, str, float | None]:
        try:
            # Redirects are not followed: they would send the API key to another host.
            async with self._client().post(
                url, data=data, headers=headers, allow_redirects=False
            ) as response:
                text = await _read_text(response)
                return (
                    response.status,
                    text,
                    retry_after_seconds(response.headers.get("Retry-After")),
                )
        except TimeoutError:
            seconds = self._settings.timeout.total_seconds()
            summary = f"{label} → timed out after {seconds:g}s"
            raise DeliveryFailed(summary, retryable=True) from None
        except aiohttp.ClientConnectorCertificateError as error:
            raise DeliveryFailed(f"{label} → TLS certificate not trusted: {error}") from None
        except aiohttp.ClientError as error:
            message = str(error) or type(error).__name__
            raise DeliveryFailed(f"{label} → {message}", retryable=True) from None


def _error_text(body: dict[str, Any], text: str) -> str:
    """Opsgenie's `message`, with its field `errors` when it sends them."""
    message = str(body.get("message") or "").strip()
    errors = body.get("errors")
    if isinstance(errors, dict) and errors:
        detail = "; ".join(f"{key}: {value}" for key, value in errors.items())
        return f"{message} ({detail})" if message else detail
    return message or _shorten(text.strip(), _SHOWN_BODY_CHARS)


def _outcome(label: str, status: int, text: str, retry_after: float | None) -> DeliveryResult:
    """The result of a response, or the DeliveryFailed it means (see the README's table)."""
    body = _json_object(text)
    if 200 <= status < 300:
        result = str(body.get("result") or "").strip()
        reference = body.get("requestId")
        return DeliveryResult(
            summary=f"{label} → {status} {result}".rstrip(),
            reference=str(reference) if reference else None,
        )
    summary = f"{label} → {status} {_error_text(body, text)}".rstrip()
    if status == 429 or status >= 500:
        raise DeliveryFailed(summary, retryable=True, retry_after=retry_after)
    raise DeliveryFailed(summary, retryable=False)


def create(settings: BaseModel) -> OpsgenieChannel:
    """The channel for one validated `channels.<name>` section; PluginError if its API key
    cannot be read now (a page is the wrong moment to find that out)."""
    if not isinstance(settings, OpsgenieSettings):
        raise PluginError(f"opsgenie: expected OpsgenieSettings, got {type(settings).__name__}")
    settings.read_api_key()
    return OpsgenieChannel(settings)
