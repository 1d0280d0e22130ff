"""How close an incident is to breaching its SLAs, as the incident list and page mark it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# "Close to breach": less than this share of the SLA's whole time is left.
NEAR_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class SlaMark:
    kind: str  # acknowledge | resolve
    due_at: datetime
    status: str  # ok | near | breached

    @property
    def label(self) -> str:
        return {"acknowledge": "ack", "resolve": "resolve"}[self.kind]


def sla_marks(incident: Any, now: datetime) -> list[SlaMark]:
    """The SLAs still running for `incident` (an API `Incident`): acknowledge until a human
    acknowledged it, resolve until it resolved. None for a resolved incident."""
    if incident.resolved_at is not None:
        return []
    marks = []
    if incident.acknowledged_at is None:
        marks.append(_mark("acknowledge", incident.opened_at, incident.ack_due_at, now))
    marks.append(_mark("resolve", incident.opened_at, incident.resolve_due_at, now))
    return marks


def _mark(kind: str, opened: datetime, due: datetime, now: datetime) -> SlaMark:
    whole = (due - opened).total_seconds()
    left = (due - now).total_seconds()
    if left <= 0:
        status = "breached"
    elif whole <= 0 or left < whole * NEAR_SHARE:
        status = "near"
    else:
        status = "ok"
    return SlaMark(kind, due, status)
