"""A Notification as a Teams workflow-webhook message holding one Adaptive Card.

Teams renders a Markdown subset in `TextBlock.text`, `Fact.title` and `Fact.value` (bold,
italic, lists, `[text](url)` links). Alert data is untrusted, so every piece of it is
escaped (`escape_markdown`) before it goes there: a label `[x](https://evil)` or `**x**`
is shown as typed, never as a link or formatting; so are the notes humans wrote about
earlier resolutions. Links remediator makes itself are `Action.OpenUrl` buttons, whose
URLs are JSON data, not Markdown.

A Teams message may be at most about 28 KB; the workflow answers 202 before it posts, so a
card that is too big would fail silently inside the flow. The card is therefore built
within `MAX_CARD_BYTES`, with less detail when the alert carries a lot of data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from yarl import URL

from remediator.plugins import AttemptSummary, KnownResolution, Notification

__all__ = ["CARD_CONTENT_TYPE", "MAX_CARD_BYTES", "build_message", "escape_markdown"]

CARD_CONTENT_TYPE: Final = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION: Final = "1.4"  # what Teams renders on desktop, web and mobile
MAX_CARD_BYTES: Final = 26_000  # under Teams' ~28 KB per message, with room for the envelope
MAX_URL_CHARS: Final = 2048
_ELLIPSIS: Final = "…"
# Inline Markdown syntax, and < and & (no HTML tags, <at> mentions or entities).
_INLINE: Final = re.compile(r"([\\`*_~\[\]<>&])")
_ORDERED_ITEM: Final = re.compile(r"(\d+)([.)])")

Element = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Budget:
    """How much alert data one card may carry; smaller budgets for bigger alerts."""

    labels: int
    value_chars: int
    attempts: int
    text_chars: int
    known: int
    """Known resolutions shown (newest first); notes are cut to text_chars, at most 1000."""


_BUDGETS: Final = (
    _Budget(labels=30, value_chars=300, attempts=10, text_chars=2000, known=5),
    _Budget(labels=15, value_chars=100, attempts=5, text_chars=500, known=3),
    _Budget(labels=0, value_chars=60, attempts=0, text_chars=150, known=1),
)
_KNOWN_NOTE_CHARS: Final = 1000


def cut(text: str, limit: int) -> str:
    """`text`, ending in … when it is longer than `limit` characters."""
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def _escape_line(line: str) -> str:
    line = _INLINE.sub(r"\\\1", line)
    # Lists and headings only start at the beginning of a line.
    ordered = _ORDERED_ITEM.match(line)
    if ordered is not None:
        return ordered.group(1) + "\\" + line[len(ordered.group(1)) :]
    if line[:1] in ("#", "-", "+", "="):
        return "\\" + line
    return line


def escape_markdown(text: str, limit: int, *, multiline: bool = False) -> str:
    """Untrusted `text` (cut to `limit` characters first) as Markdown that shows it as typed.

    Single-line texts (facts, list items) have their whitespace collapsed, so a value
    cannot start a new list item or paragraph; multi-line ones keep their lines, which
    Markdown needs as blank-line separated paragraphs.
    """
    text = cut(text.strip(), limit)
    if not multiline:
        return _escape_line(" ".join(text.split()))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n\n".join(_escape_line(line) for line in lines if line)


def _link_url(value: str | None) -> str | None:
    """`value` if a button may open it: an absolute http(s) URL of sensible length."""
    if not value or len(value) > MAX_URL_CHARS or any(char.isspace() for char in value):
        return None
    try:
        url = URL(value, encoded=True)
    except ValueError:
        return None
    return value if url.scheme in ("http", "https") and url.host else None


def _text(text: str, **style: Any) -> Element:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _title(notification: Notification, budget: _Budget, verb: str | None = None) -> Element:
    title = notification.title.strip() or f"Incident {notification.incident_id}"
    text = escape_markdown(title, min(budget.text_chars, 300))
    if verb is not None:
        text = f"{verb}: {text}"
    return _text(text, weight="Bolder", size="Medium")


def _facts(notification: Notification, budget: _Budget) -> Element:
    """Priority, state, rule, opening time, then the labels, as one FactSet."""
    at = notification.opened_at
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)  # naive means UTC
    facts = [
        ("Priority", escape_markdown(notification.priority, 50)),
        ("State", escape_markdown(notification.state, 50)),
    ]
    if notification.rule:
        facts.append(("Rule", escape_markdown(notification.rule, budget.value_chars)))
    facts.append(("Opened", at.strftime("%Y-%m-%d %H:%M UTC")))
    facts.extend(_label_facts(notification.labels, budget))
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts]}


def _label_facts(labels: Mapping[str, str], budget: _Budget) -> list[tuple[str, str]]:
    shown = list(labels.items())[: budget.labels]
    facts = [
        (escape_markdown(name, 100) or " ", escape_markdown(value, budget.value_chars) or " ")
        for name, value in shown
    ]
    hidden = list(labels)[len(shown) :]
    if hidden:
        names = escape_markdown(", ".join(hidden), budget.value_chars)
        facts.append((f"{len(hidden)} more labels", names))
    return facts


def _attempt_item(number: int, attempt: AttemptSummary, limit: int) -> str:
    head = f"{attempt.action}, attempt {attempt.attempt}: {attempt.outcome}"
    line = f"{head} — {attempt.summary}" if attempt.summary.strip() else head
    return f"{number}. {escape_markdown(line, limit)}"


def _attempts(attempts: Sequence[AttemptSummary], budget: _Budget) -> list[Element]:
    blocks = [_text("What automation tried", weight="Bolder", spacing="Medium")]
    if not attempts:
        return [*blocks, _text("nothing")]
    if budget.attempts == 0:
        return [*blocks, _text(f"{len(attempts)} attempts; open the incident for details")]
    first = max(len(attempts) - budget.attempts, 0)  # the newest ones matter most
    items = [
        _attempt_item(number, attempt, budget.value_chars)
        for number, attempt in enumerate(attempts[first:], first + 1)
    ]
    if first:
        blocks.append(_text(f"({first} earlier attempts not shown)", isSubtle=True))
    # Teams separates list items with \r (a \n\n would indent the next item).
    return [*blocks, _text("\r".join(items))]


def _utc(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # naive means UTC
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _known_resolution(known: KnownResolution, budget: _Budget) -> list[Element]:
    note = escape_markdown(known.note, min(budget.text_chars, _KNOWN_NOTE_CHARS), multiline=True)
    where = "same service/host" if known.same_key else "same rule"
    by = escape_markdown(known.resolved_by, budget.value_chars) or "someone"
    line = f"incident {known.incident_id} · {where} · resolved by {by} · {_utc(known.at)}"
    return [_text(note or " "), _text(line, isSubtle=True, spacing="None")]


def _known_resolutions(resolutions: Sequence[KnownResolution], budget: _Budget) -> list[Element]:
    """What fixed earlier incidents like this one, newest first; none, no section."""
    if not resolutions:
        return []
    blocks = [_text("Known resolutions", weight="Bolder", spacing="Medium")]
    for known in resolutions[: budget.known]:
        blocks += _known_resolution(known, budget)
    hidden = len(resolutions) - budget.known
    if hidden > 0:
        blocks.append(_text(f"({hidden} more; open the incident for them)", isSubtle=True))
    return blocks


def _runbook(runbook: str | None, budget: _Budget) -> list[Element]:
    if not runbook or not runbook.strip():
        return []
    return [
        _text("Runbook", weight="Bolder", spacing="Medium"),
        _text(escape_markdown(runbook, budget.text_chars, multiline=True)),
    ]


def _actions(notification: Notification) -> list[Element]:
    actions: list[Element] = []
    approval = _link_url(notification.approval_url)
    if notification.event == "trigger" and approval is not None:
        actions.append({"type": "Action.OpenUrl", "title": "Approve or reject", "url": approval})
    acknowledge = _link_url(notification.acknowledge_url)
    if notification.event == "trigger" and acknowledge is not None:
        actions.append(
            {
                "type": "Action.OpenUrl",
                "title": "Acknowledge",
                "url": acknowledge,
                "style": "positive",
            }
        )
    incident = _link_url(notification.incident_url)
    if incident is not None:
        actions.append({"type": "Action.OpenUrl", "title": "Open incident", "url": incident})
    runbook = _link_url((notification.runbook or "").strip())
    if notification.event == "trigger" and runbook is not None:
        actions.append({"type": "Action.OpenUrl", "title": "Open runbook", "url": runbook})
    return actions


def _body(notification: Notification, budget: _Budget) -> list[Element]:
    reason = escape_markdown(notification.reason, budget.text_chars, multiline=True)
    if notification.event == "trigger":
        return [
            _title(notification, budget),
            *([_text(reason)] if reason else []),
            _facts(notification, budget),
            *_attempts(notification.attempts, budget),
            *_known_resolutions(notification.known_resolutions, budget),
            *_runbook(notification.runbook, budget),
        ]
    verb = "Acknowledged" if notification.event == "acknowledge" else "Resolved"
    return [_title(notification, budget, verb), *([_text(reason)] if reason else [])]


def _message(notification: Notification, budget: _Budget) -> dict[str, Any]:
    card = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": _body(notification, budget),
        "actions": _actions(notification),
        "msteams": {"width": "Full"},
    }
    attachment = {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def build_message(notification: Notification) -> dict[str, Any]:
    """The JSON body to POST to the workflow webhook, within MAX_CARD_BYTES."""
    for budget in _BUDGETS:
        message = _message(notification, budget)
        if len(json.dumps(message, ensure_ascii=False).encode()) <= MAX_CARD_BYTES:
            return message
    return message  # the smallest budget is bounded well below the limit
