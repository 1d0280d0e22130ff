"""clock-resync.yml, run for real against fake systemctl, chronyc and timedatectl."""

from __future__ import annotations

from tests.playbooks.conftest import FakeHost, RunPlaybook

BASE = {"remediator_become": False, "sync_retries": "2", "sync_delay": "0"}


def test_restarts_chrony_steps_the_clock_and_verifies_sync(
    run_playbook: RunPlaybook, fake_host: FakeHost
) -> None:
    fake_host.units(
        **{
            "chrony.service": {"LoadState": "loaded", "ActiveState": "active"},
            "systemd-timesyncd.service": {"LoadState": "masked", "ActiveState": "inactive"},
        }
    )
    fake_host.answer("chronyc", "200 OK\n")
    fake_host.answer("timedatectl", "yes\n")
    run = run_playbook("clock-resync.yml", BASE).ok()
    assert fake_host.actions() == [["systemctl", "restart", "chrony.service"]]
    assert fake_host.calls("chronyc") == [["chronyc", "makestep"]]
    assert fake_host.calls("timedatectl") == [
        ["timedatectl", "show", "-p", "NTPSynchronized", "--value"]
    ]
    assert "restarted chrony.service; NTPSynchronized=yes" in run.output


def test_timesyncd_gets_no_chronyc(run_playbook: RunPlaybook, fake_host: FakeHost) -> None:
    fake_host.units(
        **{"systemd-timesyncd.service": {"LoadState": "loaded", "ActiveState": "active"}}
    )
    fake_host.answer("timedatectl", "yes\n")
    run_playbook("clock-resync.yml", BASE).ok()
    assert fake_host.actions() == [["systemctl", "restart", "systemd-timesyncd.service"]]
    assert fake_host.calls("chronyc") == []


def test_fails_when_the_clock_stays_unsynchronised(
    run_playbook: RunPlaybook, fake_host: FakeHost
) -> None:
    fake_host.units(**{"ntp.service": {"LoadState": "loaded", "ActiveState": "active"}})
    fake_host.answer("timedatectl", "no\n")
    run_playbook("clock-resync.yml", BASE).failed()
    assert fake_host.actions() == [["systemctl", "restart", "ntp.service"]]
    assert len(fake_host.calls("timedatectl")) == 3  # first try + sync_retries


def test_fails_without_a_time_daemon_and_touches_nothing(
    run_playbook: RunPlaybook, fake_host: FakeHost
) -> None:
    run = run_playbook("clock-resync.yml", BASE).failed()
    assert "no time synchronisation daemon found on this host" in run.output
    assert fake_host.actions() == []


def test_refuses_time_services_that_are_not_unit_names(
    run_playbook: RunPlaybook, fake_host: FakeHost
) -> None:
    run = run_playbook(
        "clock-resync.yml", {**BASE, "time_services": ["chrony.service", "x; reboot"]}
    ).failed()
    assert "refusing to run" in run.output
    assert fake_host.calls() == []
