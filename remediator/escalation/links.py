"""Signed, expiring links for pages (Slack buttons, e-mail, Opsgenie notes): acknowledge an
incident, or approve / reject a remediation job that waits for approval.

A link names the incident (or job) and an expiry and carries an HMAC-SHA256 of its purpose,
the id and the expiry under `escalation.link_secret`, so whoever holds the page can act without
an API token, only for that purpose, and only until the link expires. Opening the link shows a
confirmation page; only its POST acts, so mail scanners and chat unfurlers that fetch links
change nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlencode

from remediator.config import Config


def _signature(secret: str, incident_id: int, expires: int, purpose: str = "ack") -> str:
    message = f"{purpose}:{incident_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _secret(config: Config) -> str | None:
    link_secret = config.escalation.link_secret
    return None if link_secret is None else link_secret.reveal(config.base_dir)


def acknowledge_url(config: Config, incident_id: int, now: datetime) -> str | None:
    """The signed link for `incident_id`, valid for `link_ttl` from `now`; None without a secret."""
    return _signed_url(config, "ack", incident_id, f"incidents/{incident_id}/ack-link", now)


def approval_url(config: Config, job_id: int, now: datetime) -> str | None:
    """The signed approve/reject link for job `job_id`; None without a secret."""
    return _signed_url(config, "approve", job_id, f"jobs/{job_id}/approval-link", now)


def _signed_url(config: Config, purpose: str, ident: int, path: str, now: datetime) -> str | None:
    secret = _secret(config)
    if not secret:
        return None
    expires = int((now + config.escalation.link_ttl).timestamp())
    signature = _signature(secret, ident, expires, purpose)
    query = urlencode({"expires": expires, "signature": signature})
    return f"{config.external_url.rstrip('/')}/api/v1/{path}?{query}"


def link_problem(
    config: Config,
    incident_id: int,
    expires: str,
    signature: str,
    now: datetime,
    purpose: str = "ack",
) -> str | None:
    """Why this link does not act on `incident_id` (or a job's id, for "approve") now, or
    None when it does."""
    secret = _secret(config)
    if not secret:
        return "links are not enabled (escalation.link_secret)"
    if not expires.isdigit():
        return "the link is incomplete: copy the whole link from the message"
    expected = _signature(secret, incident_id, int(expires), purpose)
    if not hmac.compare_digest(expected, signature):
        return "the link's signature is not valid for this incident"
    if int(expires) < now.timestamp():
        return "the link has expired: acknowledge in the API or the paging system instead"
    return None
