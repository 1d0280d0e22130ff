"""Rule reloads reach every replica: on PostgreSQL, a replica that reloads its rules
announces the new version with NOTIFY; the others LISTEN and reload their own rule files.

The files themselves are not sent: each replica reads the same files (a ConfigMap, a shared
volume), which may reach a replica a little later than the announcement, so a replica that
reads an older version tries again for a while before it reports the difference. After a
lost connection a replica reloads once, in case it missed an announcement. On SQLite there
is one process, and nothing to tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, Final

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from remediator.rules.active import ActiveRules, ReloadOutcome
from remediator.store.database import Database
from remediator.store.outage import OutageLog

log = logging.getLogger(__name__)

CHANNEL: Final = "remediator_rules"
# A replica whose files are behind the announced version re-reads them this often, this long.
FOLLOW_INTERVAL_SECONDS: Final = 2.0
FOLLOW_ATTEMPTS: Final = 30
RECONNECT_SECONDS: Final = 2.0
PING_SECONDS: Final = 10.0


class RulesBroadcast:
    """Announces this replica's reloads and follows the others'."""

    def __init__(
        self,
        db: Database,
        database_url: str,
        active: ActiveRules,
        connect: Callable[[str], Any] = asyncpg.connect,
    ) -> None:
        self._db = db
        self._url = make_url(database_url)
        self._active = active
        self._connect = connect
        self.origin = uuid.uuid4().hex
        self._listener: asyncio.Task[None] | None = None
        self._following: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._url.get_backend_name() == "postgresql"

    def start(self) -> None:
        if self.enabled:
            self._listener = asyncio.create_task(self._listen_forever(), name="rules-listen")

    async def stop(self) -> None:
        for task in (self._listener, self._following):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def reload(self) -> ReloadOutcome:
        """Reload this replica's rule files (off the event loop) and, when that worked,
        announce the version to the other replicas."""
        outcome = await asyncio.to_thread(self._active.reload)
        if outcome.ok and self.enabled:
            await self._announce(outcome.version)
        return outcome

    async def _announce(self, version: str) -> None:
        payload = json.dumps({"version": version, "origin": self.origin})
        statement = text("SELECT pg_notify(:channel, :payload)")
        try:
            await self._db.write(
                lambda conn: conn.execute(statement, {"channel": CHANNEL, "payload": payload})
            )
        except Exception:  # the reload itself worked; the others still poll on reconnect
            log.exception("could not announce rules version %s to the other replicas", version)

    async def _listen_forever(self) -> None:
        dsn = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        first = True
        outage = OutageLog("rules broadcast", log, RECONNECT_SECONDS)
        while True:
            try:
                connection = await self._connect(dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                await asyncio.sleep(outage.failed(exc))
                continue
            outage.succeeded()
            try:
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._heard)
                if not first:  # announcements made while disconnected were lost
                    self._follow(None)
                first = False
                await self._watch(connection, lost)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("rules broadcast: listening connection lost (%s)", exc or type(exc))
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), RECONNECT_SECONDS)

    @staticmethod
    async def _watch(connection: Any, lost: asyncio.Event) -> None:
        """Return when the listening connection is gone; a ping finds one that died quietly."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), PING_SECONDS)
            if not lost.is_set():
                await asyncio.wait_for(connection.fetchval("SELECT 1"), PING_SECONDS)

    def _heard(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            announced = json.loads(payload)
            version, origin = str(announced["version"]), announced.get("origin")
        except (ValueError, KeyError, TypeError):
            log.warning("rules broadcast: ignoring a malformed announcement %r", payload)
            return
        if origin == self.origin or version == self._active.current.version:
            return
        self._follow(version)

    def _follow(self, version: str | None) -> None:
        if self._following is not None and not self._following.done():
            self._following.cancel()  # a newer announcement supersedes the one followed
        self._following = asyncio.create_task(self._catch_up(version), name="rules-follow")

    async def _catch_up(self, version: str | None) -> None:
        """Reload until this replica runs `version` (None: just reload once)."""
        for _attempt in range(FOLLOW_ATTEMPTS if version else 1):
            outcome = await asyncio.to_thread(self._active.reload)
            if version is None or outcome.version == version:
                log.info("rules version %s now in force, as announced", outcome.version)
                return
            await asyncio.sleep(FOLLOW_INTERVAL_SECONDS)
        log.warning(
            "another replica runs rules version %s, this one %s: are the rule files the "
            "same on every replica?",
            version,
            self._active.current.version,
        )
