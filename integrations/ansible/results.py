"""Turning a finished ansible-runner run into an ActionResult or an ActionFailed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from remediator.plugins import ActionFailed, ActionResult

__all__ = ["Failure", "Outcome", "judge", "run_label"]

_MAX_MESSAGE_CHARS: Final = 200
_MAX_SHOWN: Final = 3
_FAILURE_EVENTS: Final = {"runner_on_failed", "runner_on_unreachable"}
# (name in the summary, key in ansible-runner's stats)
_COUNTS: Final = (
    ("ok", "ok"),
    ("changed", "changed"),
    ("failed", "failures"),
    ("unreachable", "dark"),
)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed task or unreachable host, from ansible-runner's events."""

    host: str
    task: str
    message: str
    unreachable: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one ansible-playbook run left behind."""

    rc: int | None
    status: str
    stats: Mapping[str, Mapping[str, int]] | None
    stdout: str
    failures: list[Failure] = field(default_factory=list)


def failures_from_events(events: Iterable[Mapping[str, Any]]) -> list[Failure]:
    """Failed tasks (ignore_errors excluded) and unreachable hosts, in the order they happened."""
    found = []
    for event in events:
        if event.get("event") not in _FAILURE_EVENTS:
            continue
        data = event.get("event_data") or {}
        if data.get("ignore_errors"):
            continue
        result = data.get("res") or {}
        message = result.get("msg") if isinstance(result, Mapping) else None
        found.append(
            Failure(
                host=str(data.get("host", "?")),
                task=str(data.get("task", "?")),
                message=_one_line(str(message or "")),
                unreachable=event["event"] == "runner_on_unreachable",
            )
        )
    return found


def run_label(playbook: str, hosts: list[str]) -> str:
    """`playbook disk-cleanup.yml on db-1`, naming at most a few hosts."""
    shown = ", ".join(hosts[:_MAX_SHOWN])
    if len(hosts) > _MAX_SHOWN:
        shown += f" and {len(hosts) - _MAX_SHOWN} more"
    return f"playbook {playbook} on {shown}"


def judge(label: str, outcome: Outcome) -> ActionResult:
    """The run's result; raises ActionFailed unless every host succeeded.

    Only unreachable hosts make a failure retryable: a task that failed would fail again,
    and syntax errors or a missing playbook need a person.
    """
    if outcome.stats is None:
        reason = _last_error_line(outcome.stdout) or f"status {outcome.status}"
        raise ActionFailed(
            f"{label}: ansible-playbook exited with {outcome.rc}: {reason}",
            output=outcome.stdout,
        )
    totals = _totals(outcome.stats)
    counts = " ".join(f"{name}={totals[key]}" for name, key in _COUNTS)
    if outcome.rc == 0 and not outcome.failures:
        data = {"rc": outcome.rc, "stats": _plain_stats(outcome.stats)}
        return ActionResult(summary=f"{label}: {counts}", output=outcome.stdout, data=data)
    details = _describe(outcome.failures) or f"ansible-playbook exited with {outcome.rc}"
    retryable = totals["dark"] > 0 and totals["failures"] == 0
    raise ActionFailed(
        f"{label} failed: {details}; {counts}", retryable=retryable, output=outcome.stdout
    )


def _totals(stats: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    return {key: sum((stats.get(key) or {}).values()) for _, key in _COUNTS}


def _plain_stats(stats: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    return {key: dict(per_host) for key, per_host in stats.items() if per_host}


def _describe(failures: list[Failure]) -> str:
    parts = [
        f"{failure.host} unreachable: {failure.message}"
        if failure.unreachable
        else f"task {failure.task!r} failed on {failure.host}: {failure.message}"
        for failure in failures[:_MAX_SHOWN]
    ]
    if len(failures) > _MAX_SHOWN:
        parts.append(f"{len(failures) - _MAX_SHOWN} more")
    return "; ".join(parts)


def _last_error_line(stdout: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("[ERROR]", "ERROR!"))]
    chosen = errors[0] if errors else (lines[-1] if lines else "")
    return _one_line(chosen)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    if len(line) > _MAX_MESSAGE_CHARS:
        return line[: _MAX_MESSAGE_CHARS - 1] + "…"
    return line
