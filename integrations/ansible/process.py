"""Stopping a running ansible-playbook together with its workers and their modules.

ansible-runner's cancel kills only ansible-playbook's own process group, but Ansible (2.17+)
starts every worker in a session of its own, so a running task (and the command it runs)
would survive. Ansible's designed way out is SIGTERM to ansible-playbook: it passes the
signal to its workers, and each worker kills its process group. Stragglers get SIGKILL.

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
    """SIGTERM every process whose command line contains `marker`; SIGKILL after the grace."""
    for pid in _processes_with(marker):
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while (remaining := _processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
    for pid in remaining:
        _kill_group(pid)


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
