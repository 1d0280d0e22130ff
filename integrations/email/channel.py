"""The e-mail channel: one SMTP transaction per delivery attempt, with `aiosmtplib`.

Every step awaits the network on the event loop, so an attempt the core cancels stops at
once: the connection is closed where it stands, with no further command sent.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Final

import aiosmtplib
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

Refused = Mapping[str, aiosmtplib.SMTPResponse]
# What a refused SMTP command was doing, by the exception aiosmtplib raises for it.
_STEPS: Final[tuple[tuple[type[aiosmtplib.SMTPResponseException], str], ...]] = (
    (aiosmtplib.SMTPAuthenticationError, "login refused"),
    (aiosmtplib.SMTPSenderRefused, "sender refused"),
    (aiosmtplib.SMTPDataError, "message refused"),
    (aiosmtplib.SMTPConnectResponseError, "connection refused"),
    (aiosmtplib.SMTPHeloError, "EHLO refused"),
)


def _reply(code: int, text: str) -> str:
    """An SMTP reply as the server wrote it, e.g. `550 5.1.1 mailbox unavailable`."""
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
            refused = await self._transact(message, envelope, password)
        except (aiosmtplib.SMTPException, OSError) as error:
            raise self._failure(error) from None
        return self._result(message, envelope, refused)

    async def close(self) -> None:
        """Nothing to release: every delivery opens and closes its own connection."""

    def _client(self) -> aiosmtplib.SMTP:
        """A client for one session; TLS and login are driven step by step in `_transact`."""
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.effective_port,
            timeout=s.timeout.total_seconds(),
            use_tls=s.tls,
            start_tls=False,
            tls_context=self._ssl,
        )

    async def _transact(
        self, message: EmailMessage, envelope: list[str], password: str | None
    ) -> Refused:
        """One SMTP session: connect, STARTTLS, login, send, quit.

        Whatever ends it early (a failure, or the core cancelling the attempt) closes the
        connection at once instead of waiting for a polite QUIT.
        """
        s = self._settings
        client = self._client()
        try:
            await client.connect()
            if s.use_starttls:
                # EHLO, STARTTLS, and EHLO again before the next command (RFC 3207 4.2).
                await client.starttls()
            if s.username is not None:
                await client.login(s.username, password or "")
            refused, _ = await client.send_message(
                message, sender=mailbox(s.sender), recipients=envelope
            )
            # The message is accepted: a QUIT that goes wrong must not make it a failure
            # (a retry would mail everyone twice).
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
            return refused
        finally:
            client.close()

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
        """The DeliveryFailed for what aiosmtplib or the network raised."""
        where = self._where
        if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
            detail = "; ".join(
                f"{refusal.recipient}: {_reply(refusal.code, refusal.message)}"
                for refusal in error.recipients
            )
            retryable = all(_temporary(refusal.code) for refusal in error.recipients)
            return DeliveryFailed(
                f"{where}: every recipient refused: {detail}", retryable=retryable
            )
        if isinstance(error, aiosmtplib.SMTPResponseException):
            step = next((what for kind, what in _STEPS if isinstance(error, kind)), "refused")
            reply = _reply(error.code, error.message)
            return DeliveryFailed(f"{where}: {step}: {reply}", retryable=_temporary(error.code))
        if isinstance(error, aiosmtplib.SMTPConnectError) and isinstance(error.__cause__, OSError):
            # aiosmtplib wraps what connecting raised: a refused port, a TLS handshake.
            return _network_failure(where, error.__cause__, self._settings)
        if isinstance(error, (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectError)):
            return _network_failure(where, error, self._settings)
        if isinstance(error, aiosmtplib.SMTPServerDisconnected):
            return DeliveryFailed(f"{where}: connection lost: {error}", retryable=True)
        if isinstance(error, aiosmtplib.SMTPException):
            # STARTTLS or AUTH not offered, SMTPUTF8 needed: waiting does not change that.
            return DeliveryFailed(
                f"{where}: {str(error).rstrip('.')} (check starttls, tls and username)",
                retryable=False,
            )
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
    # asyncio words a refused connection "Connect call failed (…)"; the errno says it better.
    reason = os.strerror(error.errno) if isinstance(error, OSError) and error.errno else str(error)
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
