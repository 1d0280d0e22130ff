"""systemd-restart.yml and service-memory-restart.yml, run for real against a fake systemctl
(first on PATH): input validation, the restart itself, and the "did it stay up" check."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.playbooks.conftest import FakeHost, RunPlaybook


@pytest.mark.parametrize(
    ("playbook", "service"),
    [
        ("systemd-restart.yml", "foo; rm -rf /"),
        ("systemd-restart.yml", "-H evil"),
        ("systemd-restart.yml", "../../etc/passwd"),
        ("service-memory-restart.yml", "foo; rm -rf /"),
        ("service-memory-restart.yml", ""),
    ],
)
def test_refuses_a_service_that_is_not_a_unit_name(
    run_playbook: RunPlaybook, fake_host: FakeHost, playbook: str, service: str
) -> None:
    run = run_playbook(playbook, {"service": service, "remediator_become": False}).failed()
    assert "refusing to run" in run.output
    assert run.recap["ok"] == 0
    assert fake_host.calls() == []  # systemctl never ran


def test_alert_data_is_never_templated(
    run_playbook: RunPlaybook, fake_host: FakeHost, tmp_path: Path
) -> None:
    """remediator passes alert values as unsafe strings: a Jinja payload stays text."""
    marker = tmp_path / "pwned"
    payload = "{{ lookup('pipe', 'touch " + str(marker) + "') }}"
    vars_text = f'service: !unsafe "{payload}"\nremediator_become: false\n'
    run = run_playbook("systemd-restart.yml", {}, vars_text=vars_text).failed()
    assert "refusing to run" in run.output
    assert not marker.exists()
    assert fake_host.calls() == []


def test_restarts_the_service_and_checks_it_stays_up(
    run_playbook: RunPlaybook, fake_host: FakeHost
) -> None:
    fake_host.units(**{"getty@tty1.service": {"LoadState": "loaded", "ActiveState": "active"}})
    run = run_playbook(
        "systemd-restart.yml",
        # Strings, as remediator passes alert-derived values.
        {"service": "getty@tty1.service", "settle_seconds": "1", "remediator_become": "false"},
    ).ok()
    assert fake_host.actions() == [["systemctl", "restart", "getty@tty1.service"]]
    assert run.recap["changed"] == 1
    assert "getty@tty1.service restarted and stayed active for 1 s" in run.output


def test_fails_when_the_service_dies_again(run_playbook: RunPlaybook, fake_host: FakeHost) -> None:
    fake_host.units(
        **{"app.service": {"LoadState": "loaded", "ActiveState": "failed", "crash": True}}
    )
    run = run_playbook(
        "systemd-restart.yml",
        {"service": "app", "settle_seconds": "1", "remediator_become": False},
    ).failed()
    assert "app did not stay up after the restart: activating (auto-restart)" in run.output
    assert "a restart does not heal it" in run.output
    assert fake_host.actions() == [["systemctl", "start", "app"]]  # one attempt, no loop


def test_fails_for_a_unit_that_does_not_exist(
    run_playbook: RunPlaybook, fake_host: FakeHost
) -> None:
    run = run_playbook(
        "systemd-restart.yml", {"service": "nope", "remediator_become": False}
    ).failed()
    assert "Could not find the requested service nope" in run.output
    assert fake_host.actions() == []


def test_check_mode_restarts_nothing(run_playbook: RunPlaybook, fake_host: FakeHost) -> None:
    fake_host.units(**{"nginx.service": {"LoadState": "loaded", "ActiveState": "active"}})
    run = run_playbook(
        "systemd-restart.yml", {"service": "nginx", "remediator_become": False}, "--check"
    ).ok()
    assert run.recap["changed"] == 1  # would restart
    assert fake_host.actions() == []


def test_memory_restart_reports_memory_before_and_after(
    run_playbook: RunPlaybook, fake_host: FakeHost
) -> None:
    fake_host.units(
        **{
            "leaky.service": {
                "LoadState": "loaded",
                "ActiveState": "active",
                "MemoryCurrent": "8589934592",
            }
        }
    )
    run = run_playbook(
        "service-memory-restart.yml",
        {"service": "leaky", "settle_seconds": "0", "remediator_become": False},
    ).ok()
    assert fake_host.actions() == [["systemctl", "restart", "leaky"]]
    assert "leaky memory before: 8589934592 bytes; after: 52428800 bytes" in run.output
    assert ["systemctl", "show", "-p", "MemoryCurrent", "--value", "--", "leaky"] in (
        fake_host.calls()
    )


def test_memory_restart_leaves_a_service_below_the_threshold_alone(
    run_playbook: RunPlaybook, fake_host: FakeHost
) -> None:
    fake_host.units(
        **{
            "small.service": {
                "LoadState": "loaded",
                "ActiveState": "active",
                "MemoryCurrent": "1000",
            }
        }
    )
    run = run_playbook(
        "service-memory-restart.yml",
        {"service": "small", "min_memory_bytes": "1048576", "remediator_become": False},
    ).ok()
    assert "small uses 1000 bytes, below min_memory_bytes=1048576: not restarted" in run.output
    assert fake_host.actions() == []
    assert run.recap["changed"] == 0
