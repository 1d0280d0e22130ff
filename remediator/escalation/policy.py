"""Which escalation policy an incident gets, and what its steps mean."""

from __future__ import annotations

from remediator.config import EscalationConfig


def choose_policy(
    config: EscalationConfig, rule_policy: str | None, priority: str, *, matched: bool
) -> str | None:
    """The rule's `escalate.policy`, else the policy for its priority, else the default.

    Incidents of alerts no rule matched use `unmatched_policy` (None: nobody is paged).
    """
    if not matched:
        return config.unmatched_policy
    if rule_policy is not None:
        return rule_policy
    for level, name in config.by_priority.items():
        if level.value == priority:
            return name
    return config.default_policy
