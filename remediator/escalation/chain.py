"""Starting, advancing and stopping an incident's escalation chain, inside a transaction.

A chain is a row: the policy, the next step, the cycle (for `repeat`) and when the next step
is due. Advancing a chain turns its `notify` steps into notification rows (unique per
step, so a retried transaction or a second replica never pages twice) and its `wait` steps
into a due time. A human's acknowledgement or the incident's resolution stops the chain and
tells every channel that was paged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy.engine import Connection

from remediator.config import EscalationConfig, EscalationPolicy
from remediator.durations import format_duration
from remediator.incidents.timeline import Actor, TimelineEntry
from remediator.store import escalations as store
from remediator.store import incidents as incident_store

# Steps of one chain taken in one go at most; a policy without waits ends after one pass.
_MAX_STEPS_AT_ONCE: Final = 100
# The step number of the acknowledge/resolve notifications that end a chain.
ENDING_STEP: Final = -1


def start(
    conn: Connection, incident_id: int, policy: str | None, reason: str, now: datetime
) -> bool:
    """Start the incident's chain with `policy` (due now); False when there is none to start.

    A chain already paging about the incident goes on; its later pages give the new reason
    (e.g. "approval rejected" after "approval needed"), so nobody acts on a stale one."""
    active = store.active_for(conn, incident_id)
    if active is not None:
        if active.reason != reason:
            store.update_escalation(conn, active.id, {"reason": reason})
            _note(conn, incident_id, now, "escalation_reason", f"escalation goes on: {reason}")
        return False
    if policy is None:
        _note(
            conn,
            incident_id,
            now,
            "escalation_none",
            "no escalation policy applies: nobody "
            "is notified; the incident waits in the API for a human",
        )
        return False
    store.start(conn, incident_id, policy, reason, now)
    incident_store.mark_first(conn, incident_id, "paged_at", now)
    _note(conn, incident_id, now, "escalation_started", f"escalation policy {policy} started")
    return True


def stop(conn: Connection, incident_id: int, event: str, reason: str, now: datetime) -> None:
    """End the active chain: no further steps; channels that were paged hear `event`.

    A resolution also reaches the channels of a chain that had already ended (acknowledged,
    or all steps done), so that PagerDuty and Opsgenie close what they opened.
    """
    chain = store.active_for(conn, incident_id)
    if chain is not None:
        store.update_escalation(
            conn, chain.id, {"state": store.STOPPED, "finished_at": now, "stop_reason": reason}
        )
        # A page still waiting for its retry must not outlive the reason to send it.
        store.cancel_pending_triggers(conn, chain.id, f"cancelled: {reason}")
    elif event == "resolve":
        chain = store.latest_for(conn, incident_id)
    if chain is None:
        return
    channels = store.triggered_channels(conn, chain.id)
    added = store.add_notifications(
        conn, [_row(chain, channel, event, ENDING_STEP, 0, [], now) for channel in channels]
    )
    if chain.state == store.ACTIVE:
        told = f"; telling {', '.join(channels)}" if channels else ""
        _note(conn, incident_id, now, "escalation_stopped", f"escalation stopped: {reason}{told}")
    elif added:
        _note(
            conn,
            incident_id,
            now,
            "escalation_resolved",
            f"telling {', '.join(channels)}: {reason}",
        )


def breach(
    conn: Connection, incident: Any, kind: str, config: EscalationConfig, now: datetime
) -> None:
    """Record an SLA breach; the incident's chain moves on: to its policy's `on_breach`
    policy, else at once to its next step (a running wait is cut short)."""
    due = incident.ack_due_at if kind == "acknowledge" else incident.resolve_due_at
    what = "acknowledgement" if kind == "acknowledge" else "resolution"
    _note(
        conn,
        incident.id,
        now,
        "sla_breached",
        f"{what} SLA breached: {incident.priority} was due {due.isoformat()}",
    )
    chain = store.active_for(conn, incident.id)
    if chain is None:
        return
    policy = config.policies.get(chain.policy)
    switch_to = policy.on_breach if policy is not None else None
    if switch_to is not None and switch_to != chain.policy:
        why = f"{what} SLA breached: switching to policy {switch_to}"
        store.update_escalation(
            conn, chain.id, {"state": store.STOPPED, "finished_at": now, "stop_reason": why}
        )
        _note(conn, incident.id, now, "escalation_stopped", f"escalation stopped: {why}")
        start(conn, incident.id, switch_to, f"{chain.reason}; {why}", now)
        return
    store.update_escalation(conn, chain.id, {"next_at": now})
    _note(
        conn,
        incident.id,
        now,
        "escalation_step",
        f"escalation policy {chain.policy}: {what} SLA breached, next step now",
    )


def advance(conn: Connection, chain: Any, config: EscalationConfig, now: datetime) -> None:
    """Take every step that is due: notify now, or wait and come back."""
    policy = config.policies.get(chain.policy)
    if policy is None:
        _finish(conn, chain, now, f"policy {chain.policy} is no longer configured")
        return
    step, cycle = chain.step, chain.cycle
    for _ in range(_MAX_STEPS_AT_ONCE):
        if step >= len(policy.steps):
            if cycle >= policy.repeat:
                _finish(conn, chain, now, f"policy {chain.policy} ran all its steps")
                return
            step, cycle = 0, cycle + 1
            _note(
                conn,
                chain.incident_id,
                now,
                "escalation_repeat",
                f"escalation policy {chain.policy}: repeat {cycle} of {policy.repeat}",
            )
        current = policy.steps[step]
        step += 1
        if current.wait is not None:
            due = now + current.wait
            values = {"step": step, "cycle": cycle, "next_at": due}
            store.update_escalation(conn, chain.id, values)
            _note(
                conn,
                chain.incident_id,
                now,
                "escalation_wait",
                f"escalation policy {chain.policy}: waiting {format_duration(current.wait)}",
            )
            return
        _notify(conn, chain, policy, step - 1, cycle, now)
    store.update_escalation(conn, chain.id, {"step": step, "cycle": cycle, "next_at": now})


def _notify(
    conn: Connection, chain: Any, policy: EscalationPolicy, step: int, cycle: int, now: datetime
) -> None:
    spec = policy.steps[step]
    channels = spec.notify or []
    rows = [_row(chain, channel, "trigger", step, cycle, spec.to, now) for channel in channels]
    if store.add_notifications(conn, rows):
        _note(
            conn,
            chain.incident_id,
            now,
            "escalation_step",
            f"escalation policy {chain.policy}, step {step + 1}: notifying {', '.join(channels)}",
        )


def _finish(conn: Connection, chain: Any, now: datetime, why: str) -> None:
    store.update_escalation(
        conn, chain.id, {"state": store.DONE, "finished_at": now, "next_at": None}
    )
    _note(conn, chain.incident_id, now, "escalation_done", why)


def _row(
    chain: Any,
    channel: str,
    event: str,
    step: int,
    cycle: int,
    recipients: list[str],
    now: datetime,
) -> dict[str, Any]:
    return {
        "incident_id": chain.incident_id,
        "escalation_id": chain.id,
        "channel": channel,
        "event": event,
        "step": step,
        "cycle": cycle,
        "recipients": list(recipients),
        "state": store.PENDING,
        "attempts": 0,
        "next_at": now,
        "created_at": now,
    }


def _note(conn: Connection, incident_id: int, now: datetime, kind: str, message: str) -> None:
    entry = TimelineEntry(incident_id, now, Actor.system(), kind, message)
    incident_store.append_timeline(conn, [entry])
