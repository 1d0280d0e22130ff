"""The Slack channel: one POST of a Block Kit message to an incoming webhook per send.

Slack answers 200 with the body `ok`; failures carry a short error string as a plain-text
body (`invalid_blocks`, `no_service`, `channel_is_archived`, …) with 400, 403, 404 or 410,
429 with `Retry-After` when rate limited, and 5xx when Slack itself fails. 429, 5xx and
network errors are worth retrying; the other statuses come back the same until a human
fixes the webhook, so they are not.

The webhook URL is a credential (whoever has it can post): it never appears in a summary,
only its host does.
"""

from __future__ import annotations

import json
from typing import Final

import aiohttp
from pydantic import BaseModel
from yarl import URL

from remediator.plugins import (
    DeliveryFailed,
    DeliveryResult,
    Notification,
    PluginError,
    retry_after_seconds,
)

from .message import build_message
from .model import SlackSettings

__all__ = ["SlackChannel", "create"]

_USER_AGENT: Final = "remediator"
_SHOWN_BODY_CHARS: Final = 200
# What to do about the errors Slack documents for incoming webhooks.
_HINTS: Final = {
    "invalid_payload": "remediator sent a message Slack cannot parse; please report it",
    "invalid_blocks": "remediator sent blocks Slack rejects; please report it",
    "invalid_token": "the webhook URL is wrong or revoked; create a new webhook",
    "no_service": "the webhook was removed or its app disabled; create a new webhook",
    "no_team": "the workspace of this webhook is gone; create a new webhook",
    "team_disabled": "the workspace of this webhook is disabled",
    "action_prohibited": "a workspace admin restricts posting through this webhook",
    "channel_not_found": "the webhook's channel was deleted; create a new webhook",
    "channel_is_archived": "the webhook's channel is archived; unarchive it or use another",
}


class SlackChannel:
    """Posts to one Slack incoming webhook; one HTTP session for the channel's life."""

    def __init__(self, settings: SlackSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def send(self, notification: Notification) -> DeliveryResult:
        """Post the notification once; raise DeliveryFailed (retryable for 429, 5xx, network)."""
        try:
            url = self._settings.url()
        except PluginError as error:
            raise DeliveryFailed(f"Slack webhook: {error}", retryable=False) from None
        body = json.dumps(build_message(notification), ensure_ascii=False).encode()
        where = f"Slack webhook {url.host}"
        status, text, retry_after = await self._post(url, body, where)
        if 200 <= status < 300:
            return DeliveryResult(summary=f"{where} → {status} {text or 'ok'}".rstrip())
        raise _failure(where, status, text, retry_after)

    async def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, so that it belongs to the loop `send` runs in.
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self._settings.timeout.total_seconds())
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _post(self, url: URL, body: bytes, where: str) -> tuple[int, str, float | None]:
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": _USER_AGENT}
        try:
            # No redirects: Slack does not send any, and one would carry the page elsewhere.
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                text = (await response.text(errors="replace")).strip()
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                return response.status, text, retry_after
        except TimeoutError:
            limit = self._settings.timeout.total_seconds()
            raise DeliveryFailed(f"{where} → timed out after {limit:g}s", retryable=True) from None
        except aiohttp.ClientError as error:
            message = _redact(str(error) or type(error).__name__, url)
            raise DeliveryFailed(f"{where} → {message}", retryable=True) from None


def _redact(message: str, url: URL) -> str:
    """`message` without the webhook's path, which holds its secret token."""
    for part in (str(url), url.raw_path_qs, url.path_qs):
        if part and part != "/":
            message = message.replace(part, "/…")
    return message


def _failure(where: str, status: int, text: str, retry_after: float | None) -> DeliveryFailed:
    error = text[:_SHOWN_BODY_CHARS]
    summary = f"{where} → {status} {error}".rstrip()
    hint = _HINTS.get(error)
    if hint is not None:
        summary += f" ({hint})"
    retryable = status == 429 or status >= 500
    return DeliveryFailed(
        summary, retryable=retryable, retry_after=retry_after if retryable else None
    )


def create(settings: BaseModel) -> SlackChannel:
    """The channel for one `channels.<name>` section with `type: slack`."""
    if not isinstance(settings, SlackSettings):
        raise PluginError(f"slack channel: expected SlackSettings, got {type(settings).__name__}")
    return SlackChannel(settings)
