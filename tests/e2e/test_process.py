"""The remediator process itself: signals, graceful stop, and how it refuses bad input.

Everything runs the installed `remediator` command as a subprocess, the way an operator or
systemd does; nothing here imports the app.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, load_fixture
from tests.e2e.conftest import (
    LOOPBACK,
    RULES,
    WAIT_TIMEOUT,
    WEBHOOK,
    Launcher,
    Service,
    child_env,
    free_port,
    remediator_command,
    wait_for,
    webhook_body,
)

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 30.0

# RULES with crashloop's matcher broken (`~` is no operator), on line 3.
BROKEN_RULES = RULES.replace('alertname="KubePodCrashLooping"', 'alertname~"KubePodCrashLooping"')
assert BROKEN_RULES != RULES
FIXED_RULES = (
    RULES
    + """\
  - name: oom
    match: ['alertname="KubeContainerOOMKilled"']
    incident: {priority: P3}
"""
)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `remediator ARGS` to completion (bounded), capturing stdout and stderr."""
    return subprocess.run(
        remediator_command(*args),
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def oom_alert(fingerprint: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": "KubeContainerOOMKilled", "service": "search", "pod": "search-0"},
        "fingerprint": fingerprint,
        "startsAt": "2026-11-21T12:00:00Z",
    }


# -- SIGHUP --------------------------------------------------------------------------------


async def rule_names(service: Service) -> list[str]:
    return [rule["name"] for rule in (await service.get_json("/api/v1/rules"))["rules"]]


async def test_sighup_with_a_broken_rule_file_keeps_the_old_rules(service: Service) -> None:
    assert await rule_names(service) == ["crashloop", "disk"]
    assert await service.metric("remediator_rules_last_reload_success") == 1
    loaded_at = await service.metric("remediator_rules_last_reload_success_timestamp_seconds")

    service.rules_path.write_text(BROKEN_RULES)
    service.send_signal(signal.SIGHUP)
    rules = await wait_for(
        lambda: service.get_json("/api/v1/rules"),
        lambda body: not body["last_reload_ok"],
        "the broken reload to be reported",
    )
    assert [rule["name"] for rule in rules["rules"]] == ["crashloop", "disk"]
    assert rules["files"] == ["rules.yml"]
    (problem,) = rules["problems"]
    assert problem.startswith("rules.yml:3: ")
    assert "invalid matcher" in problem
    assert await service.metric("remediator_rules_last_reload_success") == 0
    assert await service.metric("remediator_rules_loaded") == 2
    assert (
        await service.metric("remediator_rules_last_reload_success_timestamp_seconds") == loaded_at
    )
    assert "rules.yml:3: " in service.log()
    # The old rules are not only listed, they are in force: crashloop still matches.
    status, reply = await service.post_json(WEBHOOK, load_fixture("crashloop-two-pods-firing.json"))
    assert (status, reply["stored"]) == (200, 2)
    assert [(i["rule"], i["alert_count"]) for i in await service.incidents()] == [("crashloop", 2)]
    assert (await service.get_json("/readyz"))["status"] == "ready"

    service.rules_path.write_text(FIXED_RULES)
    service.send_signal(signal.SIGHUP)
    rules = await wait_for(
        lambda: service.get_json("/api/v1/rules"),
        lambda body: body["last_reload_ok"],
        "the fixed reload to succeed",
    )
    assert [rule["name"] for rule in rules["rules"]] == ["crashloop", "disk", "oom"]
    assert rules["problems"] == []
    assert await service.metric("remediator_rules_last_reload_success") == 1
    assert await service.metric("remediator_rules_loaded") == 3
    assert (
        await service.metric("remediator_rules_last_reload_success_timestamp_seconds") > loaded_at
    )
    # ... and the new rule is in force.
    status, reply = await service.post_json(WEBHOOK, webhook_body([oom_alert("0a0b0c0d0e0f0001")]))
    assert (status, reply["stored"]) == (200, 1)
    newest, oldest = await service.incidents()
    assert (newest["rule"], newest["priority"]) == ("oom", "P3")
    assert oldest["rule"] == "crashloop"
    assert service.process.returncode is None  # SIGHUP never stops the service


# -- SIGTERM with a request in flight -----------------------------------------------------


def big_batch(count: int = 100) -> dict[str, Any]:
    """One notification of `count` crash-looping pods of one service."""
    starts = datetime(2026, 11, 21, 12, 0, tzinfo=UTC).isoformat().replace("+00:00", "Z")
    return webhook_body(
        [
            {
                "labels": {
                    "alertname": "KubePodCrashLooping",
                    "namespace": "shop",
                    "service": "checkout",
                    "pod": f"checkout-{i:03d}",
                    "severity": "warning",
                },
                "annotations": {"summary": f"Pod shop/checkout-{i:03d} is crash looping"},
                "fingerprint": f"{i:016x}",
                "startsAt": starts,
            }
            for i in range(count)
        ]
    )


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_TIMEOUT)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    body = await asyncio.wait_for(reader.readexactly(length), WAIT_TIMEOUT)
    return int(status_line.split()[1]), headers, body


async def test_sigterm_finishes_the_request_in_flight(launcher: Launcher) -> None:
    service = await launcher.start()
    batch = big_batch()
    body = json.dumps(batch).encode()
    reader, writer = await asyncio.open_connection(LOOPBACK, service.port)
    try:
        head = (
            f"POST {WEBHOOK} HTTP/1.1\r\n"
            f"Host: {LOOPBACK}:{service.port}\r\n"
            "User-Agent: Alertmanager/0.25.0\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        # "100 Continue" proves the server accepted the request and its handler is running,
        # so the SIGTERM below cannot land before the request is in flight.
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_TIMEOUT)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        writer.write(body)
        await writer.drain()
        service.send_signal(signal.SIGTERM)
        status, _headers, reply = await read_response(reader)
    finally:
        writer.close()
        await writer.wait_closed()
    assert status == 200, reply
    answer = json.loads(reply)
    assert (answer["received"], answer["stored"], answer["duplicates"]) == (100, 100, 0)
    code = await service.wait_exit()
    assert code == 0, service.log()
    assert "Traceback" not in service.log()

    # The alerts were committed: a new process on the same database has all of them.
    restarted = await launcher.start()
    (incident,) = await restarted.incidents()
    assert incident["rule"] == "crashloop"
    assert incident["alert_count"] == incident["firing_count"] == 100
    assert (incident["base_priority"], incident["priority"]) == ("P2", "P1")  # raised: 100 alerts
    detail = await restarted.incident(incident["id"])
    assert {a["fingerprint"] for a in detail["alerts"]} == {
        a["fingerprint"] for a in batch["alerts"]
    }


# -- refusing to start ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        pytest.param(
            'listen: "127.0.0.1:{port}"\ndatabase_url: "{db}"\nrules: [rules.yml]\n'
            "log_levl: info\n",
            4,
            "log_levl",
            id="unknown-key",
        ),
        pytest.param(
            'listen: "localhost"\ndatabase_url: "{db}"\nrules: [rules.yml]\n',
            1,
            "listen",
            id="listen-without-port",
        ),
        pytest.param(
            'listen: "127.0.0.1:{port}"\ndatabase_url: "{db}"\nlog_level: loud\n',
            3,
            "log_level",
            id="bad-log-level",
        ),
        pytest.param(
            'listen: "127.0.0.1:{port}"\nrules: [rules.yml\n',
            3,
            "YAML",
            id="yaml-syntax",
        ),
    ],
)
def test_serve_with_an_invalid_config_exits_1_naming_file_and_line(
    tmp_path: Path, content: str, line: int, fragment: str
) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    config = tmp_path / "config.yml"
    db = f"sqlite+aiosqlite:///{tmp_path / 'remediator.db'}"
    config.write_text(content.format(port=free_port(), db=db))
    result = run(["serve", "--config", str(config)], cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    pattern = rf"^{re.escape(str(config))}:{line}: .*{re.escape(fragment)}"
    assert re.search(pattern, result.stderr, re.MULTILINE), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "remediator.db").exists()  # it stopped before touching anything


def test_serve_with_an_invalid_rule_file_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(BROKEN_RULES)
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "listen": f"{LOOPBACK}:{free_port()}",
                "database_url": f"sqlite+aiosqlite:///{tmp_path / 'remediator.db'}",
                "rules": ["rules.yml"],
            }
        )
    )
    result = run(["serve", "--config", str(config)], cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith("rules.yml:")]
    assert problems, result.stderr
    assert re.fullmatch(r"rules\.yml:3: rules\[0\]\.match\[0\]: invalid matcher .*", problems[-1])
    assert "Traceback" not in result.stderr
    assert "Running on" not in result.stderr


# -- remediator check ----------------------------------------------------------------------


def test_check_reports_every_problem_of_a_broken_rule_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text(
        "rules:\n"
        "  - name: crashloop\n"
        "    match: ['alertname~\"KubePodCrashLooping\"']\n"
        "  - name: disk\n"
        "    match: ['alertname=\"DiskWillFillIn4Hours\"']\n"
        "    incident: {priority: P9}\n"
    )
    result = run(["check", "broken.yml"], cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    assert re.fullmatch(r"broken\.yml:3: rules\[0\]\.match\[0\]: invalid matcher .*", lines[0])
    assert re.fullmatch(r"broken\.yml:6: rules\[1\]\.incident\.priority: .*P9.*", lines[1])
    assert lines[2] == "FAILED: 2 problem(s)"
    assert "SUCCESS" not in result.stdout


@pytest.mark.parametrize("args", [["check", "rules/"], ["check"]], ids=["rules-dir", "defaults"])
def test_check_accepts_the_shipped_rules(args: list[str]) -> None:
    expected = sum(
        len(yaml.safe_load(path.read_text())["rules"])
        for path in sorted((REPO / "rules").iterdir())
        if path.suffix in {".yml", ".yaml"}
    )
    assert expected > 0
    result = run(args, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"SUCCESS: {expected} rules found"
    assert result.stderr == ""
