"""The Teams channel: one POST of an Adaptive Card message to a workflow webhook per send.

The workflow's trigger ("When a Teams webhook request is received", Power Automate / Logic
Apps) answers 202 Accepted as soon as it has queued a run, with the run's id in
`x-ms-workflow-run-id`; a flow ending in a Response action may answer 200. Failures are
JSON `{"error": {"code": …, "message": …}}`: 400 for a body the trigger's schema refuses,
401/403 for a bad or missing `sig`, 404 for a deleted workflow, 429 when throttled (with
`Retry-After`) and 5xx when the service fails. 429, 5xx and network errors are retried.

The URL's `sig` query parameter is a credential: summaries show the URL's host only.
"""

from __future__ import annotations

import json
from typing import Any, Final

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

from .card import build_message
from .model import TeamsSettings

__all__ = ["TeamsChannel", "create"]

_USER_AGENT: Final = "remediator"
_SHOWN_ERROR_CHARS: Final = 300
_RUN_ID_HEADER: Final = "x-ms-workflow-run-id"


class TeamsChannel:
    """Posts to one Teams workflow webhook; one HTTP session for the channel's life."""

    def __init__(self, settings: TeamsSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def send(self, notification: Notification) -> DeliveryResult:
        """Post the card once; raise DeliveryFailed (retryable for 429, 5xx, network)."""
        try:
            url = self._settings.url()
        except PluginError as error:
            raise DeliveryFailed(f"Teams workflow: {error}", retryable=False) from None
        body = json.dumps(build_message(notification), ensure_ascii=False).encode()
        where = f"Teams workflow {url.host}"
        status, reason, text, headers = await self._post(url, body, where)
        if 200 <= status < 300:
            run_id = headers.get(_RUN_ID_HEADER)
            return DeliveryResult(summary=f"{where} → {status} {reason}".rstrip(), reference=run_id)
        raise _failure(where, status, reason, text, headers.get("Retry-After"))

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

    async def _post(
        self, url: URL, body: bytes, where: str
    ) -> tuple[int, str, str, dict[str, str]]:
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": _USER_AGENT}
        try:
            # No redirects: one would carry the card (and its links) to another host.
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                text = await response.text(errors="replace")
                return response.status, response.reason or "", text, dict(response.headers)
        except TimeoutError:
            limit = self._settings.timeout.total_seconds()
            raise DeliveryFailed(f"{where} → timed out after {limit:g}s", retryable=True) from None
        except aiohttp.ClientError as error:
            message = _redact(str(error) or type(error).__name__, url)
            raise DeliveryFailed(f"{where} → {message}", retryable=True) from None


def _redact(message: str, url: URL) -> str:
    """`message` without the URL's path and query, which hold the signature."""
    for part in (str(url), url.raw_path_qs, url.path_qs, url.raw_query_string):
        if part and part != "/":
            message = message.replace(part, "…")
    return message


def _error_text(text: str) -> str:
    """`code: message` from a Logic Apps error body, else the body's start."""
    try:
        body: Any = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:_SHOWN_ERROR_CHARS]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return " ".join(text.split())[:_SHOWN_ERROR_CHARS]
    code, message = str(error.get("code", "")), " ".join(str(error.get("message", "")).split())
    return (f"{code}: {message}" if code and message else code or message)[:_SHOWN_ERROR_CHARS]


def _failure(
    where: str, status: int, reason: str, text: str, retry_after: str | None
) -> DeliveryFailed:
    detail = _error_text(text)
    summary = f"{where} → {status} {reason}".rstrip() + (f": {detail}" if detail else "")
    if status in (401, 403):
        summary += " (the URL's signature is wrong or was regenerated; copy the URL again)"
    elif status == 404:
        summary += " (the workflow was deleted or its trigger changed; copy the URL again)"
    retryable = status == 429 or status >= 500
    delay = retry_after_seconds(retry_after) if retryable else None
    return DeliveryFailed(summary, retryable=retryable, retry_after=delay)


def create(settings: BaseModel) -> TeamsChannel:
    """The channel for one `channels.<name>` section with `type: teams`."""
    if not isinstance(settings, TeamsSettings):
        raise PluginError(f"teams channel: expected TeamsSettings, got {type(settings).__name__}")
    return TeamsChannel(settings)
