"""SLA due times for acknowledgement and resolution, per priority."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from remediator.config import SlaTarget
from remediator.incidents.priority import Priority


def due_times(
    sla: Mapping[Priority, SlaTarget], priority: Priority, opened_at: datetime
) -> tuple[datetime, datetime]:
    """(acknowledge by, resolve by), counted from when the incident opened."""
    target = sla[priority]
    return opened_at + target.acknowledge, opened_at + target.resolve
