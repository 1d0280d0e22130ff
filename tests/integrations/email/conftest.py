"""Real SMTP servers on 127.0.0.1 (aiosmtpd), a self-signed certificate, and notifications
as the core builds them."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from remediator_integrations.email import EmailChannel, EmailSettings

from remediator.plugins import AttemptSummary, Notification

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
    """Self-signed with `cryptography` (so it is its own CA), valid for IP 127.0.0.1."""
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


@dataclass
class Received:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_to: list[str]
    data: bytes
    tls: bool
    user: str | None


@dataclass
class Handler:
    """aiosmtpd hooks with scripted replies; records what arrived (in the server's thread)."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    """Replies to RCPT TO by address, e.g. {"x@example.com": "550 5.1.1 no such user"}."""
    data_reply: str = "250 2.0.0 queued"
    data_delay: float = 0
    """Seconds to sit on a message before answering DATA (a slow or stuck server)."""
    received: list[Received] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    """EHLO and STARTTLS as the server saw them, in order."""
    hung_up: threading.Event = field(default_factory=threading.Event)
    """Set when the client hangs up while the server still holds its message."""

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # this hook's duty: aiosmtpd leaves it to us
        self.commands.append("EHLO")
        return responses

    def handle_STARTTLS(self, server: SMTP, session: Session, envelope: Envelope) -> bool:
        self.commands.append("STARTTLS")
        return True

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address, "250 2.1.5 ok")
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay:
            try:
                await asyncio.sleep(self.data_delay)
            except asyncio.CancelledError:  # aiosmtpd cancels the session on a hang-up
                self.hung_up.set()
                raise
        if self.data_reply.startswith("2"):
            self.received.append(_received(server, session, envelope))
        return self.data_reply


def _received(server: SMTP, session: Session, envelope: Envelope) -> Received:
    assert envelope.mail_from is not None
    assert isinstance(envelope.original_content, bytes)
    assert server.transport is not None
    login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
    return Received(
        mail_from=envelope.mail_from,
        rcpt_to=list(envelope.rcpt_tos),
        data=envelope.original_content,
        tls=server.transport.get_extra_info("ssl_object") is not None,
        user=login.decode() if login is not None else None,
    )


@dataclass(frozen=True)
class Users:
    """An aiosmtpd authenticator: these users and passwords, else `failure` as the reply."""

    passwords: dict[str, str]
    failure: str

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if self.passwords.get(user) == password:
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False, message=self.failure)


class SmtpServer:
    """aiosmtpd on 127.0.0.1 at `port`, in its controller's thread and event loop."""

    def __init__(
        self,
        port: int,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
        auth_failure: str = "535 5.7.8 Authentication credentials invalid",
        **script: Any,
    ) -> None:
        """`starttls` offers STARTTLS, `implicit_tls` speaks TLS from the first byte;
        `users` offers AUTH (after TLS only) and requires it before MAIL; `script` goes to
        the Handler (rcpt_replies, data_reply, data_delay)."""
        self.port = port
        self.handler = Handler(**script)
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=port,
            server_hostname="test.smtp",  # else aiosmtpd asks socket.getfqdn()
            ssl_context=implicit_tls,
            tls_context=starttls,
            authenticator=Users(users, auth_failure) if users is not None else None,
            auth_required=users is not None,
            auth_require_tls=True,
        )
        self._running = False

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def commands(self) -> list[str]:
        return self.handler.commands

    async def start(self) -> None:
        """Start the controller's thread; returns once the server answers."""
        await asyncio.to_thread(self._controller.start)
        self._running = True

    async def stop(self) -> None:
        """Stop listening, end open sessions and join the thread; harmless twice."""
        if self._running:
            self._running = False
            await asyncio.to_thread(self._controller.stop)


StartServer = Callable[..., Awaitable[SmtpServer]]


@pytest.fixture
async def smtp_server(
    unused_tcp_port_factory: Callable[[], int],
) -> AsyncIterator[StartServer]:
    """Start SmtpServers configured by keyword; all are stopped after the test."""
    started: list[SmtpServer] = []

    async def start(**options: Any) -> SmtpServer:
        server = SmtpServer(unused_tcp_port_factory(), **options)
        started.append(server)
        await server.start()
        return server

    yield start
    for server in started:
        await server.stop()


def channel(server: SmtpServer | int, **settings: Any) -> EmailChannel:
    """A channel to `server` (or a port) on 127.0.0.1 without TLS unless `settings` say so."""
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server if isinstance(server, int) else server.port,
        "starttls": False,
        "from": "Remediator <remediator@example.com>",
        "to": ["oncall@example.com"],
        "timeout": "5s",
    }
    return EmailChannel(EmailSettings.model_validate({**base, **settings}))
