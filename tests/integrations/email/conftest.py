"""Real SMTP servers on 127.0.0.1 (see smtp_server.py), a self-signed certificate, and
notifications as the core builds them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from remediator_integrations.email import EmailChannel, EmailSettings

from remediator.plugins import AttemptSummary, Notification
from tests.conftest import missing

from .smtp_server import SmtpServer

OPENED = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def notification(**fields: Any) -> Notification:
    """A trigger for incident 42 with two failed attempts; `fields` override."""
    base: dict[str, Any] = {
        "event": "trigger",
        "incident_id": 42,
        "dedup_key": "remediator-42",
        "title": "Disk full on db-1",
        "priority": "P1",
        "state": "escalated",
        "reason": "remediation failed: cleanup did not free space",
        "labels": {"alertname": "DiskFull", "instance": "db-1:9100"},
        "annotations": {"summary": "/var is 99% full"},
        "runbook": "https://runbooks.example.com/disk-full",
        "rule": "disk-full",
        "opened_at": OPENED,
        "incident_url": "https://remediator.example.com/incidents/42",
        "acknowledge_url": "https://remediator.example.com/ack/42?sig=abc&exp=1",
        "attempts": (
            AttemptSummary("ansible action 1", 1, "failed", "rc=2: rm failed", OPENED),
            AttemptSummary("ansible action 1", 2, "timeout", "no answer in 5m", OPENED),
        ),
    }
    return Notification(**{**base, **fields})


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1, as server context and CA file."""

    ca_file: Path
    server: ssl.SSLContext


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """Made with `cryptography` (ansible-core depends on it), valid for IP 127.0.0.1."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        missing("the cryptography package, to make a test certificate")
        raise
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "remediator test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return Certificate(ca_file=cert_file, server=server)


StartServer = Callable[..., Awaitable[SmtpServer]]


@pytest.fixture
async def smtp_server() -> AsyncIterator[StartServer]:
    """Start SmtpServers configured by keyword; all are stopped after the test."""
    started: list[SmtpServer] = []

    async def start(**options: Any) -> SmtpServer:
        server = SmtpServer(**options)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


def channel(server: SmtpServer, **settings: Any) -> EmailChannel:
    """A channel to `server` on 127.0.0.1 without TLS unless `settings` say otherwise."""
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "starttls": False,
        "from": "Remediator <remediator@example.com>",
        "to": ["oncall@example.com"],
        "timeout": "5s",
    }
    return EmailChannel(EmailSettings.model_validate({**base, **settings}))
