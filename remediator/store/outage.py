"""Background loops and a database that is briefly unreachable (a restart, a failover).

While PostgreSQL is down every poll fails the same way: a loop should say so once, in one
line, back off, and say when it is back, rather than log a traceback four times a second.
Failures that are not about reaching the database are still logged in full.
"""

from __future__ import annotations

import logging
import time
from typing import Final

import asyncpg
from sqlalchemy import exc as sa_exc

# Back-off while the database is unreachable: from one poll up to this, doubling.
MAX_BACKOFF_SECONDS: Final = 5.0
# While it stays unreachable, say so again this often.
REMIND_SECONDS: Final = 60.0

_UNREACHABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
)


def database_unreachable(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is about reaching the database at all."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNREACHABLE):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        original = getattr(current, "orig", None)
        current = original if isinstance(original, BaseException) else current.__cause__
    return False


class OutageLog:
    """One background loop's view of database outages: what to log, how long to wait."""

    def __init__(self, name: str, logger: logging.Logger, poll_seconds: float) -> None:
        self._name, self._log, self._poll = name, logger, poll_seconds
        self._since: float | None = None
        self._reminded = 0.0
        self._backoff = poll_seconds

    def failed(self, error: Exception) -> float:
        """Log `error` as it deserves; return how long to wait before trying again."""
        if not database_unreachable(error):
            self._log.exception("%s: will retry", self._name)
            return self._poll
        now = time.monotonic()
        if self._since is None:
            self._since, self._reminded = now, now
            self._log.warning("%s: the database is unreachable (%s); retrying", self._name, error)
        elif now - self._reminded >= REMIND_SECONDS:
            self._reminded = now
            self._log.warning(
                "%s: the database is still unreachable after %.0f s", self._name, now - self._since
            )
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_SECONDS)
        return self._backoff

    def succeeded(self) -> None:
        if self._since is not None:
            self._log.warning(
                "%s: the database is reachable again after %.0f s",
                self._name,
                time.monotonic() - self._since,
            )
        self._since, self._backoff = None, self._poll
