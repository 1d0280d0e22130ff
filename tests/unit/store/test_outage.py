"""A database outage is logged once per loop, in one line, with back-off; other errors are
still logged in full."""

from __future__ import annotations

import logging

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from remediator.store.outage import MAX_BACKOFF_SECONDS, OutageLog, database_unreachable


def _wrapped(original: BaseException) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", {}, original)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        _wrapped(asyncpg.CannotConnectNowError("the database system is shutting down")),
        _wrapped(OSError("no route")),
    ],
)
def test_errors_about_reaching_the_database_are_recognised(error: BaseException) -> None:
    assert database_unreachable(error)


def test_other_database_errors_are_not_an_outage() -> None:
    assert not database_unreachable(_wrapped(ValueError("bad value")))
    assert not database_unreachable(RuntimeError("a bug"))


def test_an_outage_is_logged_once_backs_off_and_its_end_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    outage = OutageLog("supervisor", logging.getLogger("test.outage"), poll_seconds=0.25)
    waits = [outage.failed(ConnectionRefusedError(111, "refused")) for _ in range(8)]
    assert waits == sorted(waits)
    assert waits[-1] == MAX_BACKOFF_SECONDS
    outage.succeeded()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "the database is unreachable" in messages[0]
    assert "reachable again" in messages[1]
    assert all(record.exc_info is None for record in caplog.records)


def test_a_bug_is_still_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog("supervisor", logging.getLogger("test.outage"), poll_seconds=0.25)
    wait = None
    try:
        raise RuntimeError("a bug")
    except RuntimeError as error:
        wait = outage.failed(error)  # logs while the exception is being handled, as loops do
    assert wait == 0.25
    [record] = caplog.records
    assert record.exc_info is not None
