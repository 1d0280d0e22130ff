"""The ansible executor against real ansible-playbook runs on localhost (no mocks)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from remediator_integrations.ansible import AnsibleAction, AnsibleExecutor

from remediator.plugins import ActionFailed
from remediator.rules.compiled import compile_action
from remediator.rules.templating import render_context, render_params
from tests.integrations.ansible.conftest import RequestFactory, make_executor, settings

PAYLOAD = "{{ lookup('pipe', 'touch %s') }}"


def _alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (killed, not yet reaped by PID 1) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


async def test_runs_playbook_and_summarizes(
    executor: AnsibleExecutor, request_for: RequestFactory, scratch: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "data" / "ansible"
    stale, fresh = runs / "stale-run", runs / "fresh-run"
    stale.mkdir(parents=True)
    fresh.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    out = scratch / "out.txt"

    result = await executor.run(
        request_for({"playbook": "write.yml", "extravars": {"out": str(out), "payload": "hi"}})
    )

    assert out.read_text() == "hi"
    assert (
        result.summary == "playbook write.yml on localhost: ok=1 changed=1 failed=0 unreachable=0"
    )
    assert "TASK [Write the payload]" in result.output
    assert "PLAY RECAP" in result.output
    assert result.data["stats"]["changed"] == {"localhost": 1}
    # retention: the stale run dir went, the fresh one and this run's stayed
    assert not stale.exists()
    assert fresh.exists()
    assert len([p for p in runs.iterdir() if p.name.startswith("20")]) == 1


async def test_label_values_reach_the_playbook_as_literal_text(
    executor: AnsibleExecutor, request_for: RequestFactory, scratch: Path
) -> None:
    pwned = scratch / "pwned"
    hostile = PAYLOAD % pwned
    out = scratch / "out.txt"
    action = AnsibleAction.model_validate(
        {
            "type": "ansible",
            "playbook": "write.yml",
            "extravars": {"out": str(out), "payload": "{{ labels.mountpoint }}"},
        }
    )
    labels = {"instance": "localhost:9100", "mountpoint": hostile}
    # The params exactly as the core hands them over: compiled, then rendered for the alert.
    context = render_context(labels, {}, {}, {})
    params = render_params(compile_action(action).params, context)

    result = await executor.run(request_for(params, labels=labels))

    assert params["extravars"]["payload"] == hostile
    assert out.read_text() == hostile
    assert not pwned.exists()
    assert "changed=1" in result.summary


async def test_task_failure_is_not_retryable(
    executor: AnsibleExecutor, request_for: RequestFactory
) -> None:
    with pytest.raises(ActionFailed) as caught:
        await executor.run(request_for({"playbook": "fail.yml"}))

    failure = caught.value
    assert not failure.retryable
    assert failure.summary == (
        "playbook fail.yml on localhost failed: task 'Clean the disk' failed on localhost: "
        "disk still full; ok=1 changed=0 failed=1 unreachable=0"
    )
    assert "TASK [Clean the disk]" in failure.output


async def test_unreachable_host_is_retryable(
    playbooks_dir: Path, tmp_path: Path, request_for: RequestFactory
) -> None:
    ssh = settings(connection="ssh", extra_env={"ANSIBLE_SSH_ARGS": "-o ConnectTimeout=3"})
    executor = await make_executor(playbooks_dir, tmp_path / "data", ssh)
    try:
        with pytest.raises(ActionFailed) as caught:
            await executor.run(
                request_for({"playbook": "ping.yml"}, labels={"instance": "unreachable.invalid:22"})
            )
    finally:
        await executor.close()

    failure = caught.value
    assert failure.retryable
    assert failure.summary.startswith(
        "playbook ping.yml on unreachable.invalid failed: unreachable.invalid unreachable: "
    )
    assert failure.summary.endswith("ok=0 changed=0 failed=0 unreachable=1")


async def test_broken_playbook_is_not_retryable(
    executor: AnsibleExecutor, request_for: RequestFactory
) -> None:
    with pytest.raises(ActionFailed) as caught:
        await executor.run(request_for({"playbook": "broken.yml"}))

    assert not caught.value.retryable
    assert caught.value.summary.startswith("playbook broken.yml on localhost: ansible-playbook ")
    assert "no_such_module_anywhere" in caught.value.summary
    assert "no_such_module_anywhere" in caught.value.output


async def test_cancelling_run_stops_the_playbook(
    executor: AnsibleExecutor, request_for: RequestFactory, scratch: Path, playbooks_dir: Path
) -> None:
    pidfile = scratch / "pid"
    task = asyncio.create_task(
        executor.run(request_for({"playbook": "sleep.yml", "extravars": {"pidfile": str(pidfile)}}))
    )
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the playbook never started its sleep"
        assert not task.done(), task
        await asyncio.sleep(0.05)
    pid = int(pidfile.read_text())
    assert _alive(pid)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # The sleep would last 60 s; allow a loaded machine time to reap it, no more.
    gone_by = time.monotonic() + 15
    while _alive(pid) or _processes_mentioning(str(playbooks_dir / "sleep.yml")):
        assert time.monotonic() < gone_by, "the playbook's task outlived the cancellation"
        await asyncio.sleep(0.1)


async def test_dry_run_describes_the_run_and_changes_nothing(
    executor: AnsibleExecutor, request_for: RequestFactory, scratch: Path, tmp_path: Path
) -> None:
    out = scratch / "out.txt"
    params = {
        "playbook": "write.yml",
        "extravars": {"out": str(out), "payload": "{{ x }}"},
        "limit": "localhost",
        "tags": ["a", "b"],
        "check_mode": True,
    }

    result = await executor.run(request_for(params, dry_run=True))

    assert result.summary == "dry run: would run playbook write.yml on localhost"
    assert result.data["command"] == [
        "ansible-playbook",
        "-i",
        "<run dir>/inputs/inventory.json",
        "-e",
        "@<run dir>/inputs/extravars.yml",
        "--connection",
        "local",
        "--limit",
        "localhost",
        "--tags",
        "a,b",
        "--check",
        "write.yml",
    ]
    assert result.data["hosts"] == ["localhost"]
    assert 'payload: !unsafe "{{ x }}"' in result.output
    assert not out.exists()
    assert not (tmp_path / "data").exists()


async def test_check_mode_runs_with_check(
    executor: AnsibleExecutor, request_for: RequestFactory, scratch: Path
) -> None:
    out = scratch / "out.txt"
    params = {"playbook": "write.yml", "extravars": {"out": str(out), "payload": "hi"}}

    result = await executor.run(request_for({**params, "check_mode": True}))

    assert "changed=1" in result.summary
    assert not out.exists()


async def test_hosts_limit_and_tags(
    executor: AnsibleExecutor, request_for: RequestFactory, scratch: Path
) -> None:
    params = {
        "playbook": "tagged.yml",
        "hosts": "localhost, 127.0.0.1",
        "limit": "127.0.0.1",
        "tags": ["a"],
        "skip_tags": ["b"],
        "extravars": {"dir": str(scratch)},
    }

    result = await executor.run(request_for(params, labels={}))

    assert sorted(p.name for p in scratch.iterdir()) == ["127.0.0.1-a"]
    assert result.summary.startswith("playbook tagged.yml on localhost, 127.0.0.1: ok=1 ")


@pytest.mark.parametrize(
    ("playbook", "problem"),
    [
        ("missing.yml", "does not exist"),
        ("sub", "is not a file"),
        ("/etc/hosts", "must be a path relative to the playbooks directory"),
        ("../outside.yml", "must not contain '..'"),
        ("sub/../../outside.yml", "must not contain '..'"),
        ("link.yml", "outside the playbooks directory"),
    ],
)
async def test_unusable_playbooks_are_reported_and_refused(
    executor: AnsibleExecutor,
    request_for: RequestFactory,
    playbooks_dir: Path,
    playbook: str,
    problem: str,
) -> None:
    (playbooks_dir / "link.yml").symlink_to(playbooks_dir.parent / "outside.yml")

    problems = executor.check({"type": "ansible", "playbook": playbook})
    with pytest.raises(ActionFailed) as caught:
        await executor.run(request_for({"playbook": playbook}))

    assert len(problems) == 1
    assert problem in problems[0]
    assert problem in caught.value.summary
    assert not caught.value.retryable


def test_check_accepts_playbooks_inside(executor: AnsibleExecutor, playbooks_dir: Path) -> None:
    (playbooks_dir / "inner-link.yml").symlink_to(playbooks_dir / "sub" / "ping.yml")

    assert executor.check({"playbook": "ping.yml"}) == []
    assert executor.check({"playbook": "sub/ping.yml"}) == []
    assert executor.check({"playbook": "inner-link.yml"}) == []
    assert executor.check({"playbook": "{{ labels.x }}.yml"}) != []
    assert executor.check({}) == ["playbook must be a path relative to the playbooks directory"]


@pytest.mark.parametrize(
    ("params", "labels", "problem"),
    [
        ({}, {}, "the alert has no `instance` label"),
        ({"hosts": " , "}, {}, "rendered to no host names"),
        ({"hosts": "db-1 ansible_connection=local"}, {}, "is not a plain host name"),
        ({"hosts": "db[1:3]"}, {}, "is not a plain host name"),
        ({}, {"instance": "db-1\n[evil]:9100"}, "is not a plain host name"),
        ({"limit": "@/etc/passwd"}, None, "is not a plain host pattern"),
        ({"extravars": {"ansible_ssh_common_args": "x"}}, None, "ansible_* variables"),
    ],
)
async def test_unsafe_hosts_and_options_are_refused_before_running(
    executor: AnsibleExecutor,
    request_for: RequestFactory,
    params: dict[str, object],
    labels: dict[str, str] | None,
    problem: str,
    tmp_path: Path,
) -> None:
    with pytest.raises(ActionFailed) as caught:
        await executor.run(request_for({"playbook": "ping.yml", **params}, labels=labels))

    assert problem in caught.value.summary
    assert not caught.value.retryable
    assert not (tmp_path / "data").exists()
