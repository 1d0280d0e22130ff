"""disk-cleanup.yml, run for real on a scratch tree: exactly the old rotated logs and stale
temp files go; live logs, young rotated logs, data files and symlinks stay."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.playbooks.conftest import Run, RunPlaybook

DAY = 86400

OLD_ROTATED = ["log/syslog.1", "log/syslog.2.gz", "log/nginx/access.log.3.gz", "log/app.old"]
OLD_TMP = ["tmp/build-1234.o", "tmp/session/old.bin"]
KEPT = [
    "log/syslog",  # live log, even though nobody wrote it for 10 days
    "log/nginx/access.log",  # live log
    "log/fresh.log.1",  # rotated an hour ago: younger than min_age
    "log/today.gz",  # rotated today
    "data/db.1",  # looks rotated, but data/ is not a log dir
    "data/backup.gz",
    "tmp/recent.txt",  # young temp file
    "tmp/read-yesterday",  # old mtime, but read a day ago
    "tmp/.X0-lock",  # hidden files belong to running programs
    "tmp/.X11-unix/X0",  # inside a hidden directory
    "tmp/systemd-private-abc-nginx.service-xyz/tmp/cache",  # a service's PrivateTmp
]


def age(path: Path, mtime_days: float, atime_days: float | None = None) -> None:
    now = time.time()
    atime = now - (mtime_days if atime_days is None else atime_days) * DAY
    os.utime(path, (atime, now - mtime_days * DAY))


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A tree with old and young rotated logs, live logs, temp files and data files."""
    root = tmp_path / "scratch"
    for name in OLD_ROTATED + OLD_TMP + KEPT:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
        age(path, 10)
    age(root / "log/fresh.log.1", 1 / 24)
    age(root / "log/today.gz", 0)
    age(root / "tmp/recent.txt", 0)
    age(root / "tmp/read-yesterday", 10, atime_days=1)
    # A symlink that looks like an old rotated log, pointing at a data file: never followed.
    link = root / "log/link.1"
    link.symlink_to(root / "data/db.1")
    os.utime(link, (time.time() - 10 * DAY,) * 2, follow_symlinks=False)
    return root


def cleanup_vars(root: Path, **overrides: Any) -> dict[str, Any]:
    extravars: dict[str, Any] = {
        "mountpoint": str(root),
        "log_dirs": [str(root / "log")],
        # A comma-separated string works too, as when the value comes from an alert label.
        "tmp_dirs": f"{root / 'tmp'},{root / 'missing'}",
        "remediator_become": False,
        # Strings, as remediator passes alert-derived values.
        "vacuum_journal": "false",
        "clean_package_cache": "false",
        "min_age": "2d",
        "tmp_age": "7d",
    }
    extravars.update(overrides)
    return extravars


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_removes_exactly_old_rotated_logs_and_stale_temp_files_then_is_idempotent(
    run_playbook: RunPlaybook, scratch: Path
) -> None:
    before = files(scratch)
    first = run_playbook("disk-cleanup.yml", cleanup_vars(scratch)).ok()
    assert files(scratch) == before - set(OLD_ROTATED) - set(OLD_TMP)
    assert "log/link.1" in files(scratch)
    assert (scratch / "data/db.1").read_bytes() == b"x" * 1000
    assert first.recap["changed"] == 1
    assert "removed 4 rotated logs (4000 bytes) and 2 temp files (2000 bytes)" in first.output
    assert f"left alone: {scratch / 'missing'}" in first.output
    assert "df available" in first.output

    second = run_playbook("disk-cleanup.yml", cleanup_vars(scratch)).ok()
    assert second.recap["changed"] == 0
    assert "removed 0 rotated logs" in second.output
    assert files(scratch) == before - set(OLD_ROTATED) - set(OLD_TMP)


def test_check_mode_reports_and_removes_nothing(run_playbook: RunPlaybook, scratch: Path) -> None:
    before = files(scratch)
    run = run_playbook("disk-cleanup.yml", cleanup_vars(scratch), "--check").ok()
    assert files(scratch) == before
    assert run.recap["changed"] == 0
    assert "would remove 4 rotated logs (4000 bytes) and 2 temp files" in run.output


UNSAFE = {
    "root-as-log-dir": {"log_dirs": ["/"]},
    "var-as-tmp-dir": {"tmp_dirs": "/var"},
    "relative-dir": {"log_dirs": ["relative/log"]},
    "dot-dot": {"log_dirs": ["{root}/log/../data"]},
    "negative-age-selects-young-files": {"min_age": "-2d"},
    "zero-age": {"tmp_age": "0"},
    "match-everything": {"rotated_log_patterns": ["*"]},
    "relative-mountpoint": {"mountpoint": "var"},
}


def test_refuses_unsafe_variables_before_touching_anything(
    run_playbook: RunPlaybook, scratch: Path
) -> None:
    before = files(scratch)

    def attempt(overrides: dict[str, Any]) -> Run:
        resolved = {
            key: [v.format(root=scratch) for v in value] if isinstance(value, list) else value
            for key, value in overrides.items()
        }
        return run_playbook("disk-cleanup.yml", cleanup_vars(scratch, **resolved))

    # Independent runs, so in parallel: each is a whole ansible-playbook start.
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(zip(UNSAFE, pool.map(attempt, UNSAFE.values()), strict=True))
    for case, run in runs.items():
        assert run.rc == 2, f"{case}: {run.output}"
        assert "refusing to run" in run.output, f"{case}: {run.output}"
        assert run.recap["ok"] == 0, f"{case}: {run.output}"
    assert files(scratch) == before
