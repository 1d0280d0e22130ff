"""The e-mail a notification becomes: a subject line, plain text and HTML alternatives.

Every value may come from an alert, so the subject is flattened to one line (a CR/LF
would otherwise start a header of its own), HTML gets every value through `html.escape`,
and only http(s) URLs become links (a runbook annotation `javascript:…` stays text).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Final
from urllib.parse import urlsplit

from remediator.plugins import AttemptSummary, KnownResolution, Notification

__all__ = ["build_message", "html_body", "one_line", "subject", "text_body"]

# Line breaks of every kind (Unicode's too) and other control characters.
_NOT_ONE_LINE: Final = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_NOT_ID: Final = re.compile(r"[^A-Za-z0-9._-]")
_WHAT: Final = {"trigger": "needs a human", "acknowledge": "acknowledged", "resolve": "resolved"}
_STYLE: Final = (
    "font-family:sans-serif;font-size:14px;color:#222",
    "border-collapse:collapse",
    "padding:2px 12px 2px 0;vertical-align:top;color:#666;white-space:nowrap",
    "padding:2px 0;white-space:pre-wrap",
)


def one_line(text: str) -> str:
    """`text` with every run of whitespace and control characters as one space."""
    return _NOT_ONE_LINE.sub(" ", text).strip()


def subject(n: Notification) -> str:
    """E.g. `[P1] Disk full on db-1 (incident 42, escalated)`."""
    priority, title, state = one_line(n.priority), one_line(n.title), one_line(n.state)
    return f"[{priority}] {title} (incident {n.incident_id}, {state})"


def _when(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _facts(n: Notification) -> list[tuple[str, str]]:
    facts = [("State", n.state), ("Reason", n.reason)]
    if n.rule:
        facts.append(("Rule", n.rule))
    return [*facts, ("Opened", _when(n.opened_at))]


def _links(n: Notification) -> list[tuple[str, str]]:
    links = [("Open the incident", n.incident_url)]
    if n.approval_url:
        links.append(("Approve or reject the remediation", n.approval_url))
    if n.acknowledge_url:
        links.append(("Acknowledge", n.acknowledge_url))
    if n.runbook:
        links.append(("Runbook", n.runbook))
    return links


def _heading(n: Notification) -> str:
    return f"[{n.priority}] incident {n.incident_id} {_WHAT[n.event]}: {n.title}"


def _attempt_line(a: AttemptSummary) -> str:
    return f"{a.action}, attempt {a.attempt} {a.outcome} at {_when(a.at)}: {a.summary}"


def _known_line(k: KnownResolution) -> str:
    where = "same key" if k.same_key else "same rule"
    return f"incident {k.incident_id} ({where}), {k.resolved_by} at {_when(k.at)}: {k.note}"


def _indented(text: str) -> str:
    """Multi-line values with their further lines indented, so that a value cannot pass
    for a line of the message's own (a forged `Acknowledge: …` link)."""
    return "\n      ".join(text.splitlines()) if text else text


def _text_section(title: str, values: Mapping[str, str]) -> list[str]:
    if not values:
        return []
    rows = sorted(values.items())
    return ["", title, *(f"  {one_line(key)}: {_indented(value)}" for key, value in rows)]


def text_body(n: Notification) -> str:
    """The plain text part: everything a human needs, links written out."""
    lines = [one_line(_heading(n)), ""]
    lines += [f"{name}: {_indented(value)}" for name, value in _facts(n)]
    lines += ["", *(f"{name}: {one_line(url)}" for name, url in _links(n))]
    lines += _text_section("Labels", n.labels)
    lines += _text_section("Annotations", n.annotations)
    lines += ["", "What automation tried"]
    tried = [f"  {i}. {_indented(_attempt_line(a))}" for i, a in enumerate(n.attempts, 1)]
    lines += tried or ["  nothing"]
    if n.known_resolutions:
        lines += ["", "What fixed it before"]
        lines += [f"  - {_indented(_known_line(k))}" for k in n.known_resolutions]
    lines += ["", "-- ", f"remediator, {n.dedup_key}"]
    return "\n".join(lines) + "\n"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _link(label: str, url: str) -> str:
    """An <a> for http(s) URLs; anything else (javascript:, data:) is shown as text."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https") or _NOT_ONE_LINE.search(url):
        return f"{_e(label)}: {_e(url)}"
    return f'<a href="{_e(url)}">{_e(label)}</a>'


def _html_table(rows: Iterable[tuple[str, str]]) -> str:
    cells = "".join(
        f'<tr><td style="{_STYLE[2]}">{_e(key)}</td><td style="{_STYLE[3]}">{_e(value)}</td></tr>'
        for key, value in rows
    )
    return f'<table style="{_STYLE[1]}">{cells}</table>'


def _html_section(title: str, values: Mapping[str, str]) -> str:
    if not values:
        return ""
    return f"<h3>{_e(title)}</h3>{_html_table(sorted(values.items()))}"


def html_body(n: Notification) -> str:
    """The HTML part: the same content as the text part, every value escaped."""
    heading = _heading(n)
    links = " · ".join(_link(label, url) for label, url in _links(n))
    tried = "".join(f"<li>{_e(_attempt_line(a))}</li>" for a in n.attempts)
    known = "".join(f"<li>{_e(_known_line(k))}</li>" for k in n.known_resolutions)
    parts = [
        f'<!DOCTYPE html><html><body style="{_STYLE[0]}">',
        f"<h2>{_e(heading)}</h2>",
        _html_table(_facts(n)),
        f"<p>{links}</p>",
        _html_section("Labels", n.labels),
        _html_section("Annotations", n.annotations),
        "<h3>What automation tried</h3>",
        f"<ol>{tried}</ol>" if tried else "<p>nothing</p>",
        f"<h3>What fixed it before</h3><ul>{known}</ul>" if known else "",
        f'<p style="color:#999">remediator, {_e(n.dedup_key)}</p>',
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def build_message(
    n: Notification, sender: str, recipients: Iterable[str], now: datetime
) -> EmailMessage:
    """The multipart/alternative message for `n`; `sender` and `recipients` are checked
    mailboxes (see `address_problem`)."""
    domain = sender.rpartition("@")[2].rstrip(">").strip() or "remediator.invalid"
    message = EmailMessage()
    message["Subject"] = subject(n)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = make_msgid("remediator", domain=domain)
    # One stable reference per incident lets mail clients thread trigger, ack and resolve.
    message["References"] = f"<{_NOT_ID.sub('-', n.dedup_key)}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message["X-Remediator-Incident"] = str(n.incident_id)
    message["X-Remediator-Event"] = n.event
    # Quoted-printable keeps non-ASCII text intact through servers without 8BITMIME.
    message.set_content(text_body(n), cte="quoted-printable")
    message.add_alternative(html_body(n), subtype="html", cte="quoted-printable")
    return message
