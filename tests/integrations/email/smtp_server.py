"""A small real SMTP server on 127.0.0.1 for the e-mail channel's tests.

aiosmtpd is not installed in this project, so this speaks RFC 5321 itself, as far as the
channel needs it: EHLO/HELO, STARTTLS (RFC 3207), AUTH PLAIN and LOGIN (RFC 4954), MAIL,
RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT. Replies can be scripted per recipient,
for AUTH and for DATA, so that error handling meets real SMTP replies on a real socket.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ssl
from dataclasses import dataclass, field


@dataclass
class Received:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_to: list[str]
    data: bytes
    tls: bool
    user: str | None


@dataclass
class Session:
    """The state of one client connection."""

    tls: bool
    greeted: bool = False
    user: str | None = None
    mail_from: str | None = None
    rcpt_to: list[str] = field(default_factory=list)


@dataclass
class SmtpServer:
    """The server's configuration, scripted replies and what it received."""

    starttls: ssl.SSLContext | None = None
    """Offer STARTTLS with this context."""
    implicit_tls: ssl.SSLContext | None = None
    """Speak TLS from the first byte (SMTPS)."""
    users: dict[str, str] | None = None
    """Offer AUTH (after TLS only) and require it before MAIL."""
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    """Reply lines for RCPT TO by address, e.g. {"x@example.com": "550 5.1.1 no such user"}."""
    data_reply: str = "250 2.0.0 queued"
    auth_failure: str = "535 5.7.8 Authentication credentials invalid"
    received: list[Received] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        """Listen on 127.0.0.1 at a free port (see `port`)."""
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=self.implicit_tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await _Conversation(self, reader, writer).run()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # a client that hangs up or fails the handshake ends its session
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
                await writer.wait_closed()


class _Conversation:
    """One SMTP session: read a command, answer it, until QUIT or hang-up."""

    def __init__(
        self, server: SmtpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.session = Session(tls=server.implicit_tls is not None)

    async def reply(self, *lines: str) -> None:
        """Send a (multi-line) reply: `250-a`, `250-b`, `250 c`."""
        code = lines[-1][:3]
        for line in lines[:-1]:
            self.writer.write(f"{code}-{line[4:]}\r\n".encode())
        self.writer.write(f"{lines[-1]}\r\n".encode())
        await self.writer.drain()

    async def readline(self) -> str | None:
        line = await self.reader.readline()
        return line.decode("utf-8", "replace").rstrip("\r\n") if line else None

    async def run(self) -> None:
        await self.reply("220 test.smtp ESMTP ready")
        while (line := await self.readline()) is not None:
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            self.server.commands.append(verb)
            if verb == "QUIT":
                await self.reply("221 2.0.0 bye")
                return
            handler = getattr(self, f"do_{verb.lower()}", None)
            if handler is None:
                await self.reply("502 5.5.2 command not recognized")
            else:
                await handler(argument)

    def extensions(self) -> list[str]:
        offered = ["8BITMIME", "SMTPUTF8"]
        if self.server.starttls is not None and not self.session.tls:
            offered.append("STARTTLS")
        if self.server.users is not None and self.session.tls:
            offered.append("AUTH PLAIN LOGIN")
        return offered

    async def do_ehlo(self, argument: str) -> None:
        self.session.greeted = True
        await self.reply("250 test.smtp", *(f"250 {ext}" for ext in self.extensions()))

    async def do_helo(self, argument: str) -> None:
        self.session.greeted = True
        await self.reply("250 test.smtp")

    async def do_noop(self, argument: str) -> None:
        await self.reply("250 2.0.0 ok")

    async def do_rset(self, argument: str) -> None:
        self.session.mail_from, self.session.rcpt_to = None, []
        await self.reply("250 2.0.0 ok")

    async def do_starttls(self, argument: str) -> None:
        context = self.server.starttls
        if context is None or self.session.tls:
            await self.reply("502 5.5.1 STARTTLS not available")
            return
        await self.reply("220 2.0.0 ready to start TLS")
        await self.writer.start_tls(context)
        # RFC 3207 4.2: everything learnt before TLS is forgotten, EHLO comes again.
        self.session = Session(tls=True)

    async def do_auth(self, argument: str) -> None:
        users = self.server.users
        if users is None or not self.session.tls:
            await self.reply("502 5.5.1 AUTH not available")
            return
        mechanism, _, initial = argument.partition(" ")
        credentials = await self._credentials(mechanism.upper(), initial)
        if credentials is None:
            await self.reply("501 5.5.2 cannot decode credentials")
        elif users.get(credentials[0]) == credentials[1]:
            self.session.user = credentials[0]
            await self.reply("235 2.7.0 Authentication successful")
        else:
            await self.reply(self.server.auth_failure)

    async def _credentials(self, mechanism: str, initial: str) -> tuple[str, str] | None:
        try:
            if mechanism == "PLAIN":
                if not initial:
                    await self.reply("334 ")
                    initial = await self.readline() or ""
                _, user, password = base64.b64decode(initial).decode().split("\0")
                return user, password
            if mechanism == "LOGIN":
                await self.reply("334 VXNlcm5hbWU6")  # "Username:"
                user = base64.b64decode(await self.readline() or "").decode()
                await self.reply("334 UGFzc3dvcmQ6")  # "Password:"
                return user, base64.b64decode(await self.readline() or "").decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        return None

    async def do_mail(self, argument: str) -> None:
        if not self.session.greeted:
            await self.reply("503 5.5.1 say EHLO first")
        elif self.server.users is not None and self.session.user is None:
            await self.reply("530 5.7.0 Authentication required")
        elif not argument.upper().startswith("FROM:"):
            await self.reply("501 5.5.4 syntax: MAIL FROM:<address>")
        else:
            self.session.mail_from = _path(argument)
            self.session.rcpt_to = []
            await self.reply("250 2.1.0 ok")

    async def do_rcpt(self, argument: str) -> None:
        if self.session.mail_from is None:
            await self.reply("503 5.5.1 need MAIL first")
            return
        address = _path(argument)
        answer = self.server.rcpt_replies.get(address, "250 2.1.5 ok")
        if answer.startswith("2"):
            self.session.rcpt_to.append(address)
        await self.reply(answer)

    async def do_data(self, argument: str) -> None:
        if not self.session.rcpt_to:
            await self.reply("503 5.5.1 need RCPT first")
            return
        await self.reply("354 end data with <CR><LF>.<CR><LF>")
        lines: list[bytes] = []
        while (line := await self.reader.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b".") else line)  # RFC 5321 4.5.2
        session, answer = self.session, self.server.data_reply
        if answer.startswith("2"):
            assert session.mail_from is not None
            self.server.received.append(
                Received(
                    session.mail_from, session.rcpt_to, b"".join(lines), session.tls, session.user
                )
            )
        session.mail_from, session.rcpt_to = None, []
        await self.reply(answer)


def _path(argument: str) -> str:
    """The address of `FROM:<a@b> SIZE=10` or `TO:<a@b>`, without the brackets."""
    path = argument.split(":", 1)[-1].strip().split(" ", 1)[0]
    return path.removeprefix("<").removesuffix(">")
