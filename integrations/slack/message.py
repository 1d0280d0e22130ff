"""A Notification as a Slack Block Kit message (incoming webhook payload).

Alert data (titles, labels, reasons, action output, runbooks) is untrusted. It goes into
`plain_text` objects, which Slack never parses for mentions, links or formatting; the few
`mrkdwn` texts hold our own words plus values escaped as Slack's docs require (`&`, `<`,
`>`), so a label `<!channel>` or `<https://evil|click>` is shown, never acted upon.

Slack rejects a whole message (400 `invalid_blocks`) when one limit is exceeded, so every
text is cut to its limit here: header 150, section text 3000, field 2000, at most 10 fields
per section, button text 75, URL 3000, 50 blocks per message. Known resolutions (notes
humans wrote) are alert data too: plain_text, at most MAX_KNOWN of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from yarl import URL

from remediator.plugins import AttemptSummary, KnownResolution, Notification

__all__ = [
    "MAX_BLOCKS",
    "MAX_FIELDS",
    "MAX_FIELD_CHARS",
    "MAX_HEADER_CHARS",
    "MAX_SECTION_CHARS",
    "build_message",
    "escape",
]

MAX_BLOCKS: Final = 50
MAX_HEADER_CHARS: Final = 150
MAX_SECTION_CHARS: Final = 3000
MAX_FIELD_CHARS: Final = 2000
MAX_FIELDS: Final = 10
MAX_BUTTON_CHARS: Final = 75
MAX_URL_CHARS: Final = 3000
MAX_FALLBACK_CHARS: Final = 3000
# Labels beyond this many are listed by name only: a page should stay readable.
MAX_LABEL_SECTIONS: Final = 3
_ATTEMPT_SUMMARY_CHARS: Final = 300
# Known resolutions: each is a note section and a context line, so at most 1 + 2 * 5
# blocks, which with the rest (at most 9) stays well under MAX_BLOCKS.
MAX_KNOWN: Final = 5
_KNOWN_NOTE_CHARS: Final = 1000
_KNOWN_BY_CHARS: Final = 200
_ELLIPSIS: Final = "…"

Block = dict[str, Any]


def escape(text: str) -> str:
    """`text` for a mrkdwn object: the three control characters as Slack's entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """`text`, ending in … when it is longer than `limit` characters."""
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def _escaped_cut(text: str, limit: int) -> str:
    """`escape(text)` within `limit`, cut on raw characters so no entity is split."""
    escaped = escape(text)
    keep = len(text)
    while len(escaped) > limit:
        keep -= len(escaped) - limit + 1  # each pass removes at least the overflow
        escaped = escape(text[: max(keep, 0)]) + _ELLIPSIS
    return escaped


def _plain(text: str, limit: int) -> dict[str, Any]:
    # Slack refuses empty texts; a blank label value still deserves a visible cell.
    return {"type": "plain_text", "text": cut(text, limit) or " ", "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn object for text that is already escaped (or is our own)."""
    return {"type": "mrkdwn", "text": text}


def _link_url(value: str | None) -> str | None:
    """`value` if a button may open it: an absolute http(s) URL within Slack's limit."""
    if not value or len(value) > MAX_URL_CHARS or any(char.isspace() for char in value):
        return None
    try:
        url = URL(value, encoded=True)
    except ValueError:
        return None
    # Other schemes (javascript:, slack://) must not come from alert data.
    return value if url.scheme in ("http", "https") and url.host else None


def _button(text: str, url: str, action_id: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": _plain(text, MAX_BUTTON_CHARS),
        "url": url,
        "action_id": action_id,
    }
    if style is not None:
        button["style"] = style
    return button


def _header(notification: Notification) -> Block:
    title = notification.title.strip() or f"Incident {notification.incident_id}"
    return {"type": "header", "text": _plain(title, MAX_HEADER_CHARS)}


def _summary(notification: Notification) -> Block:
    """Reason as plain text; priority, state, rule and opening time as fields."""
    at = notification.opened_at
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)  # naive means UTC
    opened, fallback = int(at.timestamp()), at.strftime("%Y-%m-%d %H:%M UTC")
    fields = [
        _mrkdwn(f"*Priority*\n{_escaped_cut(notification.priority, 100)}"),
        _mrkdwn(f"*State*\n{_escaped_cut(notification.state, 100)}"),
        # Slack renders the date in each reader's time zone; the text after | is the fallback.
        _mrkdwn(f"*Opened*\n<!date^{opened}^{{date_short_pretty}} {{time}}|{fallback}>"),
    ]
    if notification.rule:
        fields.insert(2, _mrkdwn(f"*Rule*\n{_escaped_cut(notification.rule, 1000)}"))
    block: Block = {"type": "section", "fields": fields}
    if notification.reason.strip():
        block["text"] = _plain(notification.reason, MAX_SECTION_CHARS)
    return block


def _label_sections(labels: Mapping[str, str]) -> list[Block]:
    """Labels as `name: value` fields, ten per section, the rest named in a last field."""
    items = [f"{name}: {value}" for name, value in labels.items()]
    room = MAX_LABEL_SECTIONS * MAX_FIELDS
    if len(items) > room:
        hidden = list(labels)[room - 1 :]
        items = [*items[: room - 1], f"{len(hidden)} more labels: " + ", ".join(hidden)]
    sections: list[Block] = []
    for start in range(0, len(items), MAX_FIELDS):
        chunk = items[start : start + MAX_FIELDS]
        section: Block = {"type": "section", "fields": [_plain(i, MAX_FIELD_CHARS) for i in chunk]}
        if start == 0:
            section["text"] = _mrkdwn("*Labels*")
        sections.append(section)
    return sections


def _attempt_line(number: int, attempt: AttemptSummary) -> str:
    summary = " ".join(attempt.summary.split())  # one line per attempt, whatever it held
    head = f"{number}. {attempt.action}, attempt {attempt.attempt}: {attempt.outcome}"
    return cut(f"{head} — {summary}" if summary else head, _ATTEMPT_SUMMARY_CHARS)


def _fit_lines(lines: Sequence[str], limit: int) -> str:
    """The newest lines that fit in `limit`, with a note about older ones left out."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > limit - 40:  # room for the note
            break
        kept.append(line)
        size += len(line) + 1
    left_out = len(lines) - len(kept)
    note = [f"({left_out} earlier attempts not shown)"] if left_out else []
    return "\n".join(note + kept[::-1])


def _attempts(attempts: Sequence[AttemptSummary]) -> list[Block]:
    if not attempts:
        return [{"type": "section", "text": _mrkdwn("*What automation tried*\nnothing")}]
    lines = [_attempt_line(number, a) for number, a in enumerate(attempts, 1)]
    return [
        {"type": "section", "text": _mrkdwn("*What automation tried*")},
        {"type": "section", "text": _plain(_fit_lines(lines, MAX_SECTION_CHARS), 3000)},
    ]


def _utc(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # naive means UTC
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _known_context(known: KnownResolution) -> Block:
    where = "same service/host" if known.same_key else "same rule"
    by = " ".join(known.resolved_by.split()) or "someone"
    line = f"incident {known.incident_id} · {where} · resolved by {cut(by, _KNOWN_BY_CHARS)}"
    return {"type": "context", "elements": [_plain(f"{line} · {_utc(known.at)}", 2000)]}


def _known_resolutions(resolutions: Sequence[KnownResolution]) -> list[Block]:
    """What fixed earlier incidents like this one, newest first: the note as plain_text,
    who and when as a context line."""
    if not resolutions:
        return []
    blocks: list[Block] = [{"type": "section", "text": _mrkdwn("*Known resolutions*")}]
    for known in resolutions[:MAX_KNOWN]:
        blocks.append({"type": "section", "text": _plain(known.note, _KNOWN_NOTE_CHARS)})
        blocks.append(_known_context(known))
    return blocks


def _runbook(runbook: str | None) -> list[Block]:
    if not runbook or not runbook.strip():
        return []
    block: Block = {"type": "section", "text": _plain(f"Runbook: {runbook}", MAX_SECTION_CHARS)}
    url = _link_url(runbook.strip())
    if url is not None:
        block["accessory"] = _button("Open runbook", url, "open_runbook")
    return [block]


def _actions(notification: Notification) -> list[Block]:
    buttons: list[Block] = []
    approval = _link_url(notification.approval_url)
    if notification.event == "trigger" and approval is not None:
        buttons.append(_button("Approve or reject", approval, "approve", style="primary"))
    acknowledge = _link_url(notification.acknowledge_url)
    if notification.event == "trigger" and acknowledge is not None:
        buttons.append(_button("Acknowledge", acknowledge, "acknowledge", style="primary"))
    incident = _link_url(notification.incident_url)
    if incident is not None:
        buttons.append(_button("Open incident", incident, "open_incident"))
    return [{"type": "actions", "elements": buttons}] if buttons else []


def _fallback(notification: Notification, verb: str | None = None) -> str:
    """The notification text (push, e-mail digests, screen readers); mrkdwn, so escaped."""
    head = f"{verb}: " if verb else f"[{notification.priority}] "
    tail = f" — {notification.reason}" if notification.reason.strip() else ""
    return _escaped_cut(head + notification.title + tail, MAX_FALLBACK_CHARS)


def _limit_blocks(blocks: Iterable[Block]) -> list[Block]:
    """At most MAX_BLOCKS blocks, keeping the last one (the buttons)."""
    blocks = list(blocks)
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    return [*blocks[: MAX_BLOCKS - 1], blocks[-1]]


def _trigger(notification: Notification) -> dict[str, Any]:
    blocks = [
        _header(notification),
        _summary(notification),
        *_label_sections(notification.labels),
        *_attempts(notification.attempts),
        *_known_resolutions(notification.known_resolutions),
        *_runbook(notification.runbook),
        *_actions(notification),
    ]
    return {"text": _fallback(notification), "blocks": _limit_blocks(blocks)}


def _follow_up(notification: Notification, verb: str) -> dict[str, Any]:
    """A short message for an acknowledge or resolve: what, why, and the incident link."""
    title = notification.title.strip() or f"Incident {notification.incident_id}"
    blocks: list[Block] = [
        {"type": "section", "text": _plain(f"{verb}: {title}", MAX_SECTION_CHARS)}
    ]
    if notification.reason.strip():
        blocks.append({"type": "context", "elements": [_plain(notification.reason, 2000)]})
    blocks.extend(_actions(notification))
    return {"text": _fallback(notification, verb), "blocks": blocks}


def build_message(notification: Notification) -> dict[str, Any]:
    """The JSON body to POST to the incoming webhook for this notification."""
    if notification.event == "acknowledge":
        return _follow_up(notification, "Acknowledged")
    if notification.event == "resolve":
        return _follow_up(notification, "Resolved")
    return _trigger(notification)
