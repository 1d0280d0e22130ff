"""Every shipped playbook: valid syntax, the house conventions, and documented."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.playbooks.conftest import ANSIBLE_PLAYBOOK, PLAYBOOKS

SHIPPED = [
    "clock-resync.yml",
    "disk-cleanup.yml",
    "service-memory-restart.yml",
    "systemd-restart.yml",
    "tls-renew.yml",
]
# Task keywords that are not modules.
KEYWORDS = {
    "name", "when", "register", "loop", "loop_control", "changed_when", "failed_when",
    "check_mode", "until", "retries", "delay", "block", "rescue", "always", "become",
    "ignore_errors", "tags", "vars", "no_log", "environment",
}  # fmt: skip


def test_the_library_is_what_the_readme_lists() -> None:
    assert sorted(p.name for p in PLAYBOOKS.glob("*.yml")) == SHIPPED
    readme = (PLAYBOOKS / "README.md").read_text()
    for name in SHIPPED:
        assert f"`{name}`" in readme


def test_syntax_check_passes(ansible_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "--syntax-check", "-i", "localhost,"]
        + [str(PLAYBOOKS / name) for name in SHIPPED],
        cwd=tmp_path,
        env=ansible_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stdout + proc.stderr


def tasks_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for task in items:
        found.append(task)
        for section in ("block", "rescue", "always"):
            found += tasks_of(task.get(section, []))
    return found


@pytest.mark.parametrize("name", SHIPPED)
def test_conventions(name: str) -> None:
    text = (PLAYBOOKS / name).read_text()
    header = text.split("\n- ", 1)[0]
    for part in ("Answers:", "Does", "Never", "Variables (defaults):", "By hand:"):
        assert part in header, f"{name}: header lacks {part!r}"
    plays = yaml.safe_load(text)
    assert len(plays) == 1
    play = plays[0]
    assert play["hosts"] == "all"
    assert "remediator_become" in play["become"]  # tests and operators can run unprivileged
    assert play["gather_facts"] is False
    for task in tasks_of(play["tasks"]):
        modules = [key for key in task if key not in KEYWORDS]
        if "block" in task:
            assert modules == [], f"{name}: {task['name']}"
            continue
        assert len(modules) == 1, f"{name}: {task.get('name')}: {modules}"
        assert modules[0].startswith("ansible.builtin."), f"{name}: {modules[0]}"
        assert task.get("name"), f"{name}: unnamed task"
