"""Incident priorities P1 (most urgent) to P4, and how they are derived."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    def raised(self) -> Priority:
        """One level more urgent; P1 stays P1."""
        order = list(Priority)
        return order[max(order.index(self) - 1, 0)]


DEFAULT_SEVERITY_MAP: dict[str, Priority] = {
    "critical": Priority.P1,
    "error": Priority.P2,
    "warning": Priority.P3,
    "info": Priority.P4,
    "none": Priority.P4,
}


def priority_for(
    rule_priority: Priority | None,
    labels: Mapping[str, str],
    severity_map: Mapping[str, Priority],
    default: Priority,
) -> Priority:
    """The rule's priority if it sets one, else the alert's `severity` label mapped."""
    if rule_priority is not None:
        return rule_priority
    return severity_map.get(labels.get("severity", "").lower(), default)
