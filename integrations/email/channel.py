"""The e-mail channel: one SMTP transaction per delivery attempt.

`aiosmtplib` is not a dependency, so the standard library's `smtplib` runs in a worker
thread (`asyncio.to_thread`). A thread cannot be cancelled: when the core gives up on an
attempt, the transaction still ends by itself within `timeout` per network operation.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Final

from pydantic import BaseModel

from remediator.plugins import (
    DeliveryFailed,
    DeliveryResult,
    Notification,
    PluginError,
    read_secret,
)

from .message import build_message
from .model import EmailSettings, address_problem, mailbox

__all__ = ["EmailChannel", "create"]

Refused = Mapping[str, tuple[int, bytes]]
# What a refused SMTP command was doing, by the exception smtplib raises for it.
_STEPS: Final[tuple[tuple[type[smtplib.SMTPResponseException], str], ...]] = (
    (smtplib.SMTPAuthenticationError, "login refused"),
    (smtplib.SMTPSenderRefused, "sender refused"),
    (smtplib.SMTPDataError, "message refused"),
    (smtplib.SMTPConnectError, "connection refused"),
    (smtplib.SMTPHeloError, "EHLO refused"),
)


def _reply(code: int, text: bytes | str) -> str:
    """An SMTP reply as the server wrote it, e.g. `550 5.1.1 mailbox unavailable`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"


def _temporary(code: int) -> bool:
    # RFC 5321 4.2.1: 4yz is a transient failure worth repeating, 5yz a permanent one.
    # A reply without a number (-1) means a garbled conversation: try again too.
    return code < 0 or 400 <= code < 500


class EmailChannel:
    """Delivers notifications as e-mail through one SMTP server."""

    def __init__(self, settings: EmailSettings, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._ssl = _ssl_context(settings)
        self._where = f"smtp {settings.host}:{settings.effective_port}"

    def password(self) -> str | None:
        """The SMTP password, read now so that a rotated file or variable takes effect."""
        s = self._settings
        inline = s.password.get_secret_value() if s.password is not None else None
        return read_secret("password", inline, s.password_env, s.password_file)

    def recipients(self, notification: Notification) -> list[str]:
        """The escalation step's recipients, else the channel's `to`; each address once."""
        chosen = notification.recipients or tuple(self._settings.to)
        unique: dict[str, str] = {}
        for value in chosen:
            problem = address_problem(value)
            if problem is not None:
                raise DeliveryFailed(f"email: recipient {problem}", retryable=False)
            unique.setdefault(mailbox(value).lower(), value)
        if not unique:
            raise DeliveryFailed(
                "email: no recipients: set `to` on the channel or name them in the escalation step",
                retryable=False,
            )
        return list(unique.values())

    async def send(self, notification: Notification) -> DeliveryResult:
        """Mail the notification once; raise DeliveryFailed (retryable for 4xx replies,
        connection errors and timeouts, not for 5xx replies or TLS/config problems)."""
        recipients = self.recipients(notification)
        try:
            password = self.password()
        except PluginError as error:
            raise DeliveryFailed(f"email: {error}", retryable=False) from None
        now = datetime.fromtimestamp(self._clock(), UTC)
        message = build_message(notification, self._settings.sender, recipients, now)
        envelope = [mailbox(value) for value in recipients]
        try:
            refused = await asyncio.to_thread(self._transact, message, envelope, password)
        except (smtplib.SMTPException, OSError) as error:
            raise self._failure(error) from None
        return self._result(message, envelope, refused)

    async def close(self) -> None:
        """Nothing to release: every delivery opens and closes its own connection."""

    def _transact(
        self, message: EmailMessage, envelope: list[str], password: str | None
    ) -> Refused:
        """One SMTP session, in a worker thread: connect, TLS, login, send, quit."""
        s = self._settings
        port, timeout = s.effective_port, s.timeout.total_seconds()
        client = (
            smtplib.SMTP_SSL(s.host, port, timeout=timeout, context=self._ssl)
            if s.tls
            else smtplib.SMTP(s.host, port, timeout=timeout)
        )
        with client:
            client.ehlo()
            if s.use_starttls:
                client.starttls(context=self._ssl)
                client.ehlo()  # RFC 3207: what the server offers may change under TLS
            if s.username is not None:
                client.login(s.username, password or "")
            return client.send_message(message, from_addr=mailbox(s.sender), to_addrs=envelope)

    def _result(
        self, message: EmailMessage, envelope: list[str], refused: Refused
    ) -> DeliveryResult:
        accepted = [address for address in envelope if address not in refused]
        summary = f"{self._where}: mailed {', '.join(accepted)}"
        if refused:
            # The message went out to the others; retrying would mail them twice.
            summary += "; refused " + "; ".join(
                f"{address}: {_reply(*reply)}" for address, reply in refused.items()
            )
        return DeliveryResult(summary=summary, reference=str(message["Message-ID"]))

    def _failure(self, error: Exception) -> DeliveryFailed:
        """The DeliveryFailed for what smtplib or the network raised."""
        where = self._where
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            replies = error.recipients.items()
            detail = "; ".join(f"{address}: {_reply(*reply)}" for address, reply in replies)
            retryable = all(_temporary(code) for code, _ in error.recipients.values())
            return DeliveryFailed(
                f"{where}: every recipient refused: {detail}", retryable=retryable
            )
        if isinstance(error, smtplib.SMTPResponseException):
            step = next((what for kind, what in _STEPS if isinstance(error, kind)), "refused")
            reply = _reply(error.smtp_code, error.smtp_error)
            return DeliveryFailed(
                f"{where}: {step}: {reply}", retryable=_temporary(error.smtp_code)
            )
        if isinstance(error, smtplib.SMTPServerDisconnected):
            # smtplib reports a reply that never came as a disconnection.
            if isinstance(error.__context__, TimeoutError):
                return _network_failure(where, error.__context__, self._settings)
            return DeliveryFailed(f"{where}: connection lost: {error}", retryable=True)
        if isinstance(error, smtplib.SMTPNotSupportedError):
            return DeliveryFailed(
                f"{where}: {error} (check starttls, tls and username)", retryable=False
            )
        if isinstance(error, smtplib.SMTPException):
            return DeliveryFailed(f"{where}: {error}", retryable=False)
        return _network_failure(where, error, self._settings)


def _network_failure(where: str, error: Exception, settings: EmailSettings) -> DeliveryFailed:
    if isinstance(error, ssl.SSLCertVerificationError):
        # Waiting does not fix a certificate the configuration does not trust.
        hint = "set ca_file to the CA that signs it" if settings.ca_file is None else ""
        return DeliveryFailed(
            f"{where}: TLS certificate not trusted: {error.verify_message}; {hint}".rstrip("; "),
            retryable=False,
        )
    if isinstance(error, ssl.SSLError):
        return DeliveryFailed(
            f"{where}: TLS failed: {error.reason or error} (tls: true is for implicit TLS, "
            "usually port 465; starttls for 587)",
            retryable=False,
        )
    if isinstance(error, TimeoutError):
        seconds = settings.timeout.total_seconds()
        return DeliveryFailed(f"{where}: timed out after {seconds:g}s", retryable=True)
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return DeliveryFailed(f"{where}: {reason}", retryable=True)


def _ssl_context(settings: EmailSettings) -> ssl.SSLContext:
    """The TLS context for STARTTLS and implicit TLS, built once."""
    if not settings.verify_tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as error:
        raise PluginError(f"ca_file {settings.ca_file}: {error}") from None


def create(settings: BaseModel) -> EmailChannel:
    """The channel for one `channels.<name>` section; a missing password stops the service."""
    if not isinstance(settings, EmailSettings):
        raise PluginError(f"email: expected EmailSettings, got {type(settings).__name__}")
    channel = EmailChannel(settings)
    channel.password()
    return channel
