"""tls-renew.yml, run for real with openssl: a renewal hook that writes a fresh self-signed
certificate heals; a hook that does nothing leaves the play failed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing
from tests.playbooks.conftest import FakeHost, RunPlaybook


def make_cert(path: Path, days: int) -> None:
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-batch"]
    out = ["-keyout", str(path.with_suffix(".key")), "-out", str(path)]
    subprocess.run(
        ["openssl", "req", "-x509", *key, "-subj", "/CN=remediator.test", "-days", str(days), *out],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def openssl() -> None:
    if shutil.which("openssl") is None:
        missing("openssl")


@pytest.fixture
def renew_hook(tmp_path: Path, openssl: None) -> Path:
    """A renewal hook that writes a fresh 90-day certificate to the path it is given."""
    hook = tmp_path / "renew.py"
    hook.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, subprocess, sys\n"
        "cert = pathlib.Path(sys.argv[1])\n"
        "subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec',\n"
        "                '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-batch',\n"
        "                '-subj', '/CN=remediator.test', '-days', '90',\n"
        "                '-keyout', str(cert.with_suffix('.key')), '-out', str(cert)],\n"
        "               check=True, capture_output=True)\n"
        "with open(cert.parent / 'renewals', 'a') as log:\n"
        "    log.write('renewed\\n')\n"
    )
    hook.chmod(0o755)
    return hook


def renewals(cert: Path) -> int:
    log = cert.parent / "renewals"
    return len(log.read_text().splitlines()) if log.exists() else 0


def tls_vars(cert: Path, command: list[str], **overrides: Any) -> dict[str, Any]:
    return {
        "cert_path": str(cert),
        "renew_command": command,
        "min_days": "30",
        "remediator_become": False,
        **overrides,
    }


def test_renews_an_expiring_certificate_then_leaves_it_alone(
    run_playbook: RunPlaybook, renew_hook: Path, tmp_path: Path
) -> None:
    cert = tmp_path / "site.pem"
    make_cert(cert, days=3)
    first = run_playbook("tls-renew.yml", tls_vars(cert, [str(renew_hook), str(cert)])).ok()
    assert renewals(cert) == 1
    assert first.recap["changed"] == 1
    assert f"{cert} valid for more than 30 days" in first.output
    subprocess.run(
        ["openssl", "x509", "-noout", "-checkend", str(80 * 86400), "-in", str(cert)], check=True
    )

    second = run_playbook("tls-renew.yml", tls_vars(cert, [str(renew_hook), str(cert)])).ok()
    assert renewals(cert) == 1  # already good: the hook did not run again
    assert second.recap["changed"] == 0
    assert "already good, not renewed" in second.output


def test_creates_a_missing_certificate_through_the_hook(
    run_playbook: RunPlaybook, renew_hook: Path, tmp_path: Path
) -> None:
    cert = tmp_path / "new.pem"
    run_playbook("tls-renew.yml", tls_vars(cert, [str(renew_hook), str(cert)])).ok()
    assert renewals(cert) == 1


def test_fails_when_the_hook_does_not_renew(
    run_playbook: RunPlaybook, tmp_path: Path, openssl: None
) -> None:
    cert = tmp_path / "site.pem"
    make_cert(cert, days=1)
    run = run_playbook("tls-renew.yml", tls_vars(cert, ["true"])).failed()
    assert f"{cert} is still not valid for more than 30 days after running true" in run.output
    assert "Certificate will expire" in run.output


def test_fails_when_the_hook_fails(
    run_playbook: RunPlaybook, tmp_path: Path, openssl: None
) -> None:
    cert = tmp_path / "site.pem"
    make_cert(cert, days=1)
    run = run_playbook("tls-renew.yml", tls_vars(cert, ["false"])).failed()
    assert "Run the renewal hook" in run.output


def test_reloads_the_service_after_renewing(
    run_playbook: RunPlaybook, renew_hook: Path, tmp_path: Path, fake_host: FakeHost
) -> None:
    fake_host.units(**{"nginx.service": {"LoadState": "loaded", "ActiveState": "active"}})
    cert = tmp_path / "site.pem"
    make_cert(cert, days=1)
    run_playbook(
        "tls-renew.yml",
        tls_vars(cert, [str(renew_hook), str(cert)], reload_service="nginx"),
    ).ok()
    assert fake_host.actions() == [["systemctl", "reload", "nginx"]]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"renew_command": "certbot renew; rm -rf /"}, id="string-command"),
        pytest.param({"renew_command": []}, id="empty-command"),
        pytest.param({"cert_path": "site.pem"}, id="relative-cert-path"),
        pytest.param({"reload_service": "nginx; reboot"}, id="bad-reload-service"),
    ],
)
def test_refuses_unsafe_variables(
    run_playbook: RunPlaybook, tmp_path: Path, overrides: dict[str, Any]
) -> None:
    marker = tmp_path / "ran"
    run = run_playbook(
        "tls-renew.yml", tls_vars(tmp_path / "c.pem", ["touch", str(marker)], **overrides)
    ).failed()
    assert "refusing to run" in run.output
    assert run.recap["ok"] == 0
    assert not marker.exists()
