"""PagerDuty V3 webhooks: a human's acknowledge or resolve in PagerDuty, back to remediator.

A webhook subscription POSTs one JSON envelope per event,
`{"event": {"id", "event_type", "resource_type", "occurred_at", "agent", "client", "data"}}`,
signed in `X-PagerDuty-Signature` as `v1=<hex HMAC-SHA256(secret, raw body)>`, with several
comma-separated signatures while a secret is being rotated (developer.pagerduty.com,
"Verifying Signatures"). Only `incident.acknowledged` and `incident.resolved` by a person are
turned into events; see README.md ("Acknowledge and resolve in PagerDuty") for the table.

Finding our incident in a V3 payload (the evidence is in the README):

- `data.incident_key` is documented as "the incident's de-duplication key", which for an
  Events API v2 incident is the `dedup_key` we sent (`remediator-<id>`). It is used when
  it has that form.
- It may be null, though: pull requests against PagerDuty's schema and docs report
  `incident.*` webhooks with a null key, and another project's test against a real account
  saw it null for Events API incidents, whose dedup key then lives only on the alert
  (`alert_key`), which the webhook does not carry. So the
  trigger's summary, which becomes the incident's `title`, ends with ` [remediator-<id>]`
  when webhooks are configured (see `summary_suffix`), and that exact suffix is the
  fallback. Only the end of the title is read: the suffix is always ours, whatever the
  alert's own title contains.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

from remediator.plugins import InboundEvent, InboundRejected

__all__ = [
    "SIGNATURE_HEADER",
    "events_from",
    "sign",
    "summary_suffix",
    "verify",
]

SIGNATURE_HEADER: Final = "X-PagerDuty-Signature"
_VERSION: Final = "v1="
_ACTIONS: Final[dict[str, Literal["acknowledge", "resolve"]]] = {
    "incident.acknowledged": "acknowledge",
    "incident.resolved": "resolve",
}
_KEY: Final = re.compile(r"remediator-\d+")
_TITLE_KEY: Final = re.compile(r"\[(remediator-\d+)\]\s*$")
_MAX_NOTE_CHARS: Final = 500


def summary_suffix(dedup_key: str) -> str:
    """What the trigger's summary ends with, so that the incident's title names our key."""
    return f" [{dedup_key}]"


def sign(body: bytes, secret: str) -> str:
    """The `v1=` signature PagerDuty sends for `body` (tests and tools use it too)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return _VERSION + digest


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # aiohttp's headers are case-insensitive; a plain mapping (tests, other callers) may not be.
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.casefold()
    return next((v for k, v in headers.items() if k.casefold() == wanted), None)


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    """Accept the body if any `v1=` signature in the header is ours; InboundRejected(401)."""
    header = _header(headers, SIGNATURE_HEADER)
    if not header:
        raise InboundRejected(401, f"missing {SIGNATURE_HEADER} header")
    expected = sign(body, secret).encode()
    candidates = [part.strip() for part in header.split(",")]
    # Each comparison is constant-time; which candidate matched reveals nothing about the key.
    if not any(
        hmac.compare_digest(expected, candidate.lower().encode("utf-8", "replace"))
        for candidate in candidates
        if candidate.startswith(_VERSION)
    ):
        raise InboundRejected(401, f"{SIGNATURE_HEADER} does not match the webhook secret")


def _envelope(body: bytes) -> dict[str, Any]:
    """The envelope's `event` object; InboundRejected(400) when the body is not one."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InboundRejected(400, "body is not JSON") from None
    event = document.get("event") if isinstance(document, dict) else None
    if not isinstance(event, dict):
        raise InboundRejected(400, "not a V3 webhook: no 'event' object")
    if not isinstance(event.get("event_type"), str) or not event["event_type"]:
        raise InboundRejected(400, "not a V3 webhook: 'event.event_type' is missing")
    return event


def _dedup_key(incident: Mapping[str, Any]) -> str | None:
    """Our `remediator-<id>` for the incident: its incident_key, else its title's suffix."""
    key = incident.get("incident_key")
    if isinstance(key, str) and _KEY.fullmatch(key):
        return key
    title = incident.get("title")
    found = _TITLE_KEY.search(title) if isinstance(title, str) else None
    return found[1] if found else None


def _by_a_person(event: Mapping[str, Any]) -> str | None:
    """The person's name when a user did it; None for integrations (our own Events API
    acknowledge/resolve echoed back, monitoring clearing an alert) and timeouts, which no
    human decided."""
    agent = event.get("agent")
    if not isinstance(agent, dict) or agent.get("type") != "user_reference":
        return None
    name = agent.get("summary") or agent.get("id")
    return str(name) if name else "a PagerDuty user"


def _merged(incident: Mapping[str, Any]) -> bool:
    # A merge resolves the merged incident although its problem lives on in the target.
    reason = incident.get("resolve_reason")
    return isinstance(reason, dict) and reason.get("type") == "merge_resolve_reason"


def _note(action: str, incident: Mapping[str, Any]) -> str:
    # A resolve's note becomes a known resolution ("what fixed it"), which PagerDuty does not
    # send with the event; an acknowledge's comment may point at the PagerDuty incident.
    if action != "acknowledge":
        return ""
    number, url = incident.get("number"), incident.get("html_url")
    parts = [f"PagerDuty incident #{number}" if number else "", url if isinstance(url, str) else ""]
    return " ".join(part for part in parts if part)[:_MAX_NOTE_CHARS]


def events_from(body: bytes) -> list[InboundEvent]:
    """The acknowledge/resolve events in one verified webhook body (zero or one)."""
    event = _envelope(body)
    action = _ACTIONS.get(event["event_type"])
    if action is None:
        return []  # triggered, annotated, escalated, ...: nothing remediator acts on
    incident = event.get("data")
    if not isinstance(incident, dict):
        raise InboundRejected(400, f"{event['event_type']}: 'event.data' is not an incident")
    actor = _by_a_person(event)
    key = _dedup_key(incident)
    if actor is None or key is None or (action == "resolve" and _merged(incident)):
        return []
    return [InboundEvent(action=action, dedup_key=key, actor=actor, note=_note(action, incident))]
