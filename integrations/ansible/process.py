"""Stopping a running ansible-playbook together with its workers and their modules.

ansible-runner's cancel kills only ansible-playbook's own process group, but Ansible (2.17+)
starts every worker in a session of its own, so a running task (and the command it runs)
would survive. Ansible's designed way out is SIGTERM to ansible-playbook: it passes the
signal to its workers, and each worker kills its process group. Stragglers get SIGKILL,
and so does every process they started (found from /proc before they could be orphaned,
and checked by start time so that a reused pid is never hit): a worker that dies first
would otherwise leave its task's command running under init.

Processes are found by a marker in their command line (the run's private directory, which
is unique per run); forked workers share the parent's command line. This needs /proc
(Linux); elsewhere only ansible-runner's own kill happens.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Final

__all__ = ["stop_processes"]

_PROC: Final = Path("/proc")
_POLL_SECONDS: Final = 0.05


def stop_processes(marker: str, grace_seconds: float) -> None:
    """SIGTERM every process whose command line contains `marker`; SIGKILL after the grace
    what is left of them and of every process they started (the task's own commands too)."""
    roots = _processes_with(marker)
    family = _with_descendants(roots)
    for pid in roots:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        # Keep adding what they start meanwhile: a worker that dies leaves its children
        # to init, where they can no longer be found from the marker.
        family.update(_with_descendants(_processes_with(marker)))
        if not any(_same_process(pid, start) for pid, start in family.items()):
            return
        time.sleep(_POLL_SECONDS)
    for pid, start in family.items():
        if _same_process(pid, start):
            _kill_group(pid)


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process; None when gone or a zombie."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def _same_process(pid: int, start: int) -> bool:
    """Whether `pid` still is the process that started at `start` (pids are reused)."""
    stat = _stat(pid)
    return stat is not None and stat[1] == start


def _with_descendants(roots: list[int]) -> dict[int, int]:
    """`roots` and all their descendants: pid -> start time."""
    if not roots or not _PROC.is_dir():
        return {}
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
            starts[int(entry.name)] = stat[1]
    found: dict[int, int] = {}
    pending = list(roots)
    while pending:
        pid = pending.pop()
        if pid in starts and pid not in found:
            found[pid] = starts[pid]
            pending.extend(children.get(pid, []))
    return found


def _processes_with(marker: str) -> list[int]:
    if not _PROC.is_dir():
        return []
    needle = marker.encode()
    own = os.getpid()
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # exited meanwhile, or not ours to read
            continue
        if needle in cmdline:  # a zombie's cmdline is empty, so the dead drop out
            found.append(int(entry.name))
    return found


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(OSError):  # already gone
        os.kill(pid, signum)


def _kill_group(pid: int) -> None:
    try:
        group = os.getpgid(pid)
    except OSError:
        return
    if group == os.getpgrp():  # never our own group: that would kill the service
        _signal(pid, signal.SIGKILL)
        return
    with contextlib.suppress(OSError):
        os.killpg(group, signal.SIGKILL)
