"""The e-mail channel against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from html.parser import HTMLParser
from pathlib import Path

import pytest
from remediator_integrations.email import EmailChannel

from remediator.plugins import DeliveryFailed, KnownResolution

from .conftest import Certificate, Received, StartServer, channel, notification


def parse(received: Received) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(received.data)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain text and HTML alternatives, decoded, with SMTP's CRLF as LF."""
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(plain, EmailMessage)
    assert isinstance(rich, EmailMessage)
    text: str = plain.get_content()
    markup: str = rich.get_content()
    return text.replace("\r\n", "\n"), markup.replace("\r\n", "\n")


async def failure(sender: EmailChannel, **fields: object) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        await sender.send(notification(**fields))
    return caught.value


class _Html(HTMLParser):
    """The tags, link targets and text of an HTML document, as a browser would see them."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self.feed(document)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [value or "" for name, value in attrs if name == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


async def test_delivers_a_multipart_message_with_everything(smtp_server: StartServer) -> None:
    server = await smtp_server()

    result = await channel(server).send(notification())

    [received] = server.received
    assert received.mail_from == "remediator@example.com"
    assert received.rcpt_to == ["oncall@example.com"]
    message = parse(received)
    assert message["Subject"] == "[P1] Disk full on db-1 (incident 42, escalated)"
    assert message["From"] == "Remediator <remediator@example.com>"
    assert message["To"] == "oncall@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["References"] == "<remediator-42@example.com>"
    assert message["X-Remediator-Incident"] == "42"
    assert result.reference == message["Message-ID"]
    assert result.summary == f"smtp 127.0.0.1:{server.port}: mailed oncall@example.com"
    plain, rich = parts(message)
    for expected in (
        "[P1] incident 42 needs a human: Disk full on db-1",
        "Reason: remediation failed: cleanup did not free space",
        "Rule: disk-full",
        "Opened: 2024-05-01 12:00:00 UTC",
        "Open the incident: https://remediator.example.com/incidents/42",
        "Acknowledge: https://remediator.example.com/ack/42?sig=abc&exp=1",
        "Runbook: https://runbooks.example.com/disk-full",
        "  alertname: DiskFull",
        "  summary: /var is 99% full",
        "  1. ansible action 1, attempt 1 failed at 2024-05-01 12:00:00 UTC: rc=2: rm failed",
        "  2. ansible action 1, attempt 2 timeout",
    ):
        assert expected in plain
    page = _Html(rich)
    assert page.hrefs == [
        "https://remediator.example.com/incidents/42",
        "https://remediator.example.com/ack/42?sig=abc&exp=1",
        "https://runbooks.example.com/disk-full",
    ]
    text = "".join(page.text)
    for expected in ("Disk full on db-1", "db-1:9100", "/var is 99% full", "rc=2: rm failed"):
        assert expected in text


async def test_alert_values_arrive_as_text_in_the_html_part(smtp_server: StartServer) -> None:
    server = await smtp_server()
    hostile = notification(
        title='<img src=x onerror="alert(1)"> & co',
        labels={"service": "<script>alert(1)</script>", "<b>key</b>": "v"},
        annotations={"description": "</td></tr></table><a href='https://evil'>ack</a>"},
        runbook="javascript:alert(document.cookie)",
        reason="line one\nAcknowledge: https://evil.example.com",
    )

    await channel(server).send(hostile)

    plain, rich = parts(parse(server.received[0]))
    page = _Html(rich)
    assert "script" not in page.tags
    assert "img" not in page.tags
    assert "b" not in page.tags
    assert not any("evil" in href or "javascript" in href for href in page.hrefs)
    text = "".join(page.text)
    assert "<script>alert(1)</script>" in text
    assert '<img src=x onerror="alert(1)"> & co' in text
    assert "<b>key</b>" in text
    assert "Runbook: javascript:alert(document.cookie)" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rich
    # In plain text a multi-line value is indented: it cannot pose as the message's own link.
    assert "\nAcknowledge: https://evil" not in plain
    assert "Reason: line one\n      Acknowledge: https://evil.example.com" in plain


async def test_line_breaks_in_the_title_cannot_create_headers(smtp_server: StartServer) -> None:
    server = await smtp_server()

    await channel(server).send(
        notification(title="Disk full\r\nBcc: evil@example.com\r\n\r\nfake body", priority="P2\n")
    )

    [received] = server.received
    assert received.rcpt_to == ["oncall@example.com"]
    message = parse(received)
    assert message["Bcc"] is None
    # A subject this long is folded before its first word; unfolding keeps the space.
    assert message["Subject"].lstrip() == (
        "[P2] Disk full Bcc: evil@example.com fake body (incident 42, escalated)"
    )


async def test_non_ascii_text_survives(smtp_server: StartServer) -> None:
    server = await smtp_server()

    await channel(server).send(notification(title="Überlauf — 磁盘已满", labels={"zone": "zürich"}))

    message = parse(server.received[0])
    assert message["Subject"] == "[P1] Überlauf — 磁盘已满 (incident 42, escalated)"
    plain, rich = parts(message)
    assert "zone: zürich" in plain
    assert "磁盘已满" in rich


@pytest.mark.parametrize(
    ("event", "state", "heading"),
    [
        ("acknowledge", "acknowledged", "incident 42 acknowledged"),
        ("resolve", "resolved", "incident 42 resolved"),
    ],
)
async def test_acknowledge_and_resolve(
    smtp_server: StartServer, event: str, state: str, heading: str
) -> None:
    server = await smtp_server()

    await channel(server).send(notification(event=event, state=state, attempts=()))

    message = parse(server.received[0])
    assert message["Subject"] == f"[P1] Disk full on db-1 (incident 42, {state})"
    assert message["X-Remediator-Event"] == event
    plain, _ = parts(message)
    assert heading in plain
    assert "What automation tried\n  nothing" in plain


async def test_step_recipients_replace_the_default_and_count_once(
    smtp_server: StartServer,
) -> None:
    server = await smtp_server()
    recipients = ("Ann <ann@example.com>", "bob@example.com", "ANN@example.com")

    result = await channel(server).send(notification(recipients=recipients))

    [received] = server.received
    assert received.rcpt_to == ["ann@example.com", "bob@example.com"]
    assert parse(received)["To"] == "Ann <ann@example.com>, bob@example.com"
    assert result.summary.endswith("mailed ann@example.com, bob@example.com")


async def test_no_or_bad_recipients_are_not_retried(smtp_server: StartServer) -> None:
    server = await smtp_server()

    nobody = await failure(channel(server, to=[]))
    bad = await failure(channel(server), recipients=("x@example.com\r\nBcc: y@example.com",))

    assert not nobody.retryable
    assert "no recipients" in nobody.summary
    assert not bad.retryable
    assert "line break" in bad.summary
    assert server.received == []


async def test_starttls_with_the_servers_ca_file(
    smtp_server: StartServer, certificate: Certificate
) -> None:
    server = await smtp_server(starttls=certificate.server)

    await channel(server, starttls=True, ca_file=str(certificate.ca_file)).send(notification())

    [received] = server.received
    assert received.tls
    assert server.commands[:3] == ["EHLO", "STARTTLS", "EHLO"]


async def test_implicit_tls(smtp_server: StartServer, certificate: Certificate) -> None:
    server = await smtp_server(implicit_tls=certificate.server)

    await channel(server, starttls=None, tls=True, ca_file=str(certificate.ca_file)).send(
        notification()
    )

    assert server.received[0].tls


@pytest.mark.parametrize(
    ("server_tls", "client_tls"),
    [
        ("starttls", {"starttls": True}),
        ("implicit_tls", {"starttls": None, "tls": True}),
    ],
)
async def test_an_untrusted_certificate_is_not_retried(
    smtp_server: StartServer,
    certificate: Certificate,
    server_tls: str,
    client_tls: dict[str, object],
) -> None:
    server = await smtp_server(**{server_tls: certificate.server})

    error = await failure(channel(server, **client_tls))

    assert not error.retryable
    assert "certificate not trusted" in error.summary
    assert "ca_file" in error.summary
    assert server.received == []


async def test_starttls_required_but_not_offered_is_not_retried(
    smtp_server: StartServer,
) -> None:
    server = await smtp_server()

    error = await failure(channel(server, starttls=True))

    assert not error.retryable
    assert "STARTTLS" in error.summary
    assert server.received == []


async def test_auth_after_starttls(smtp_server: StartServer, certificate: Certificate) -> None:
    server = await smtp_server(starttls=certificate.server, users={"alerts": "s3cret"})
    settings = {"starttls": True, "ca_file": str(certificate.ca_file), "username": "alerts"}

    await channel(server, **settings, password="s3cret").send(notification())
    wrong = await failure(channel(server, **settings, password="guess"))

    [received] = server.received
    assert (received.user, received.tls) == ("alerts", True)
    assert not wrong.retryable
    assert "login refused: 535 5.7.8 Authentication credentials invalid" in wrong.summary


async def test_a_temporary_auth_failure_is_retried(
    smtp_server: StartServer, certificate: Certificate
) -> None:
    server = await smtp_server(
        starttls=certificate.server,
        users={"alerts": "s3cret"},
        auth_failure="454 4.7.0 Temporary authentication failure",
    )
    sender = channel(
        server, starttls=True, ca_file=str(certificate.ca_file), username="alerts", password="x"
    )

    error = await failure(sender)

    assert error.retryable
    assert "454 4.7.0" in error.summary


async def test_password_file_is_read_for_every_delivery(
    smtp_server: StartServer, certificate: Certificate, tmp_path: Path
) -> None:
    server = await smtp_server(starttls=certificate.server, users={"alerts": "new"})
    secret = tmp_path / "smtp-password"
    secret.write_text("old\n")
    sender = channel(
        server,
        starttls=True,
        ca_file=str(certificate.ca_file),
        username="alerts",
        password_file=str(secret),
    )

    assert not (await failure(sender)).retryable
    secret.write_text("new\n")
    await sender.send(notification())

    assert [received.user for received in server.received] == ["alerts"]


async def test_login_required_but_not_configured(
    smtp_server: StartServer, certificate: Certificate
) -> None:
    server = await smtp_server(starttls=certificate.server, users={"alerts": "s3cret"})

    error = await failure(channel(server, starttls=True, ca_file=str(certificate.ca_file)))

    assert not error.retryable
    assert "sender refused: 530 5.7.0 Authentication required" in error.summary


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        ("550 5.1.1 <oncall@example.com>: mailbox unavailable", False),
        ("553 5.1.3 bad address", False),
        ("451 4.3.0 try again later", True),
        ("452 4.2.2 mailbox full", True),
    ],
)
async def test_a_refused_recipient(smtp_server: StartServer, reply: str, retryable: bool) -> None:
    server = await smtp_server(rcpt_replies={"oncall@example.com": reply})

    error = await failure(channel(server))

    assert error.retryable is retryable
    assert error.summary == (
        f"smtp 127.0.0.1:{server.port}: every recipient refused: oncall@example.com: {reply}"
    )
    assert server.received == []


async def test_some_recipients_refused_is_delivered_and_says_so(
    smtp_server: StartServer,
) -> None:
    server = await smtp_server(rcpt_replies={"gone@example.com": "550 5.1.1 no such user"})

    result = await channel(server, to=["oncall@example.com", "gone@example.com"]).send(
        notification()
    )

    assert server.received[0].rcpt_to == ["oncall@example.com"]
    assert result.summary.endswith(
        "mailed oncall@example.com; refused gone@example.com: 550 5.1.1 no such user"
    )


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("451 4.7.1 greylisted, come back later", True), ("554 5.7.1 rejected as spam", False)],
)
async def test_a_refused_message(smtp_server: StartServer, reply: str, retryable: bool) -> None:
    server = await smtp_server(data_reply=reply)

    error = await failure(channel(server))

    assert error.retryable is retryable
    assert error.summary.endswith(f"message refused: {reply}")


async def test_connection_refused_is_retried(smtp_server: StartServer) -> None:
    server = await smtp_server()
    await server.stop()

    error = await failure(channel(server))

    assert error.retryable
    assert error.summary == f"smtp 127.0.0.1:{server.port}: Connection refused"


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word: the greeting never comes."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def test_a_server_that_does_not_greet_times_out_and_is_retried() -> None:
    async with silent_server() as port:
        error = await failure(channel(port, timeout="200ms"))

    assert error.retryable
    assert error.summary == f"smtp 127.0.0.1:{port}: timed out after 0.2s"


async def test_a_server_that_stops_answering_times_out_and_is_retried(
    smtp_server: StartServer,
) -> None:
    server = await smtp_server(data_delay=30)

    error = await failure(channel(server, timeout="200ms"))

    assert error.retryable
    assert error.summary == f"smtp 127.0.0.1:{server.port}: timed out after 0.2s"
    assert await asyncio.to_thread(server.handler.hung_up.wait, 5)


async def test_a_cancelled_attempt_hangs_up_at_once(smtp_server: StartServer) -> None:
    server = await smtp_server(data_delay=30)

    with pytest.raises(TimeoutError):
        # What the core does when an attempt outlives its time: cancel it.
        await asyncio.wait_for(channel(server).send(notification()), 0.5)

    # The server, still holding the message, sees the connection close: nothing was sent.
    assert await asyncio.to_thread(server.handler.hung_up.wait, 5)
    assert server.received == []


async def test_close_is_harmless(smtp_server: StartServer) -> None:
    server = await smtp_server()
    sender = channel(server)
    await sender.close()
    await sender.send(notification())
    assert len(server.received) == 1


async def test_what_fixed_it_before_is_in_both_parts(smtp_server: StartServer) -> None:
    server = await smtp_server()
    known = KnownResolution(
        note="<b>grew</b> the volume\nAcknowledge: https://evil.example.com",
        resolved_by="dana",
        at=datetime(2024, 4, 30, 9, 0, tzinfo=UTC),
        incident_id=7,
        same_key=True,
    )
    await channel(server).send(notification(known_resolutions=(known,)))
    plain, rich = parts(parse(server.received[0]))
    assert "What fixed it before\n  - incident 7 (same key), dana at " in plain
    assert "\nAcknowledge: https://evil" not in plain  # the note's lines stay indented
    page = _Html(rich)
    assert "b" not in page.tags
    assert "<b>grew</b> the volume" in "".join(page.text)


async def test_no_known_resolutions_no_section(smtp_server: StartServer) -> None:
    server = await smtp_server()
    await channel(server).send(notification())
    plain, rich = parts(parse(server.received[0]))
    assert "What fixed it before" not in plain
    assert "What fixed it before" not in rich
