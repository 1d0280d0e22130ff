"""The webhook channel: one signed JSON POST per delivery attempt.

The body is a stable, versioned document (see README.md); the signature covers the
timestamp and the raw body, and is computed afresh for every attempt. The delivery id stays
the same for every attempt of one notification, so a receiver can drop a retry it handled.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
from pydantic import BaseModel

from remediator.plugins import (
    DeliveryFailed,
    DeliveryResult,
    Notification,
    PluginError,
    read_secret,
    retry_after_seconds,
    tls_setting,
)

from .model import WebhookSettings
from .signature import sign

__all__ = ["PAYLOAD_VERSION", "WebhookChannel", "create", "delivery_id", "payload"]

PAYLOAD_VERSION: Final = 1
_USER_AGENT: Final = "remediator"
_SHOWN_BODY_CHARS: Final = 200
_READ_BYTES: Final = 4096


def _iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`; a naive datetime is taken as UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def delivery_id(notification: Notification) -> str:
    """`<dedup_key>-<notification id>`, the same for every retry of one notification, e.g.
    `remediator-42-17`; a fresh UUID when the core gives no notification id."""
    if notification.notification_id is None:
        return str(uuid.uuid4())
    return f"{notification.dedup_key}-{notification.notification_id}"


def payload(notification: Notification, delivery_id: str, sent_at: datetime) -> dict[str, Any]:
    """The JSON document a receiver gets (version 1); README.md documents every field."""
    n = notification
    return {
        "version": PAYLOAD_VERSION,
        "event": n.event,
        "delivery_id": delivery_id,
        "incident": {
            "id": n.incident_id,
            "dedup_key": n.dedup_key,
            "title": n.title,
            "priority": n.priority,
            "state": n.state,
            "rule": n.rule,
            "reason": n.reason,
            "labels": dict(n.labels),
            "annotations": dict(n.annotations),
            "runbook": n.runbook,
            "opened_at": _iso(n.opened_at),
            "url": n.incident_url,
            "acknowledge_url": n.acknowledge_url,
            "approval_url": n.approval_url,
        },
        "attempts": [
            {
                "action": a.action,
                "attempt": a.attempt,
                "outcome": a.outcome,
                "summary": a.summary,
                "at": _iso(a.at),
            }
            for a in n.attempts
        ],
        "known_resolutions": [
            {
                "incident_id": k.incident_id,
                "note": k.note,
                "resolved_by": k.resolved_by,
                "at": _iso(k.at),
                "same_key": k.same_key,
            }
            for k in n.known_resolutions
        ],
        "sent_at": _iso(sent_at),
    }


class WebhookChannel:
    """Delivers notifications to one webhook URL; one aiohttp session for all sends."""

    def __init__(self, settings: WebhookSettings, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._ssl = tls_setting(settings.verify_tls, settings.ca_file, "ca_file")
        self._session: aiohttp.ClientSession | None = None

    def secret(self) -> str:
        """The HMAC key, read now so that a rotated file or variable takes effect."""
        s = self._settings
        inline = s.secret.get_secret_value() if s.secret is not None else None
        value = read_secret("secret", inline, s.secret_env, s.secret_file)
        if not value:
            raise PluginError("secret: the HMAC key is empty")
        return value

    async def send(self, notification: Notification) -> DeliveryResult:
        """POST the signed document once; raise DeliveryFailed (retryable for 429, 5xx,
        network errors and timeouts)."""
        try:
            secret = self.secret()
        except PluginError as error:
            raise DeliveryFailed(f"webhook: {error}", retryable=False) from None
        now = self._clock()  # timestamp, sent_at and signature are new for every attempt
        delivery = delivery_id(notification)
        document = payload(notification, delivery, datetime.fromtimestamp(now, UTC))
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(now))
        headers = {
            **self._settings.headers,
            "User-Agent": _USER_AGENT,
            "Content-Type": "application/json",
            "X-Remediator-Timestamp": timestamp,
            "X-Remediator-Signature": sign(secret, timestamp, body),
            "X-Remediator-Delivery": delivery,
            "X-Remediator-Event": notification.event,
        }
        return await self._post(body, headers, delivery)

    async def close(self) -> None:
        """Close the shared session, if one was opened."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._settings.timeout.total_seconds())
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _post(self, body: bytes, headers: dict[str, str], delivery_id: str) -> DeliveryResult:
        where = f"webhook POST {self._settings.url}"
        try:
            async with self._client().post(
                self._settings.url,
                data=body,
                headers=headers,
                ssl=self._ssl,
                allow_redirects=False,  # a redirect would carry the signed body elsewhere
            ) as response:
                # Enough of an error body to explain it; the rest is not worth waiting for.
                text = (await response.content.read(_READ_BYTES)).decode("utf-8", "replace")
                status, reason = response.status, response.reason or ""
                wait = retry_after_seconds(
                    response.headers.get("Retry-After"),
                    datetime.fromtimestamp(self._clock(), UTC),
                )
        except TimeoutError:
            seconds = self._settings.timeout.total_seconds()
            raise DeliveryFailed(
                f"{where} → timed out after {seconds:g}s", retryable=True
            ) from None
        except (aiohttp.ClientError, OSError) as error:
            raise DeliveryFailed(f"{where} → {error}", retryable=True) from None
        outcome = f"{where} → {status} {reason}".rstrip()
        if 200 <= status < 300:
            return DeliveryResult(summary=outcome, reference=delivery_id)
        shown = text[:_SHOWN_BODY_CHARS] + ("…" if len(text) > _SHOWN_BODY_CHARS else "")
        summary = f"{outcome}: {shown}" if shown.strip() else outcome
        retryable = status == 429 or status >= 500
        raise DeliveryFailed(summary, retryable=retryable, retry_after=wait if retryable else None)


def create(settings: BaseModel) -> WebhookChannel:
    """The channel for one `channels.<name>` section; a missing secret stops the service."""
    if not isinstance(settings, WebhookSettings):
        raise PluginError(f"webhook: expected WebhookSettings, got {type(settings).__name__}")
    channel = WebhookChannel(settings)
    channel.secret()
    return channel
