"""Maintenance windows: weekdays, midnight, time zones and DST, one-off windows, matchers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from remediator.guards.windows import WEEKDAYS, MaintenanceWindow, active_window


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(**fields: object) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({"name": "w", **fields})


def test_a_window_crossing_midnight_belongs_to_the_day_it_starts() -> None:
    friday_night = window(weekdays=["fri"], start="22:00", end="02:00")
    assert not friday_night.is_active(utc("2026-11-20T21:59"))  # a Friday
    assert friday_night.is_active(utc("2026-11-20T22:00"))
    assert friday_night.is_active(utc("2026-11-21T01:59"))  # Saturday morning
    assert not friday_night.is_active(utc("2026-11-21T02:00"))  # the end is exclusive
    assert not friday_night.is_active(utc("2026-11-21T22:30"))  # Saturday night: not a Friday
    assert friday_night.ends_at(utc("2026-11-21T01:00")) == utc("2026-11-21T02:00")


def test_local_time_in_the_window_zone_counts() -> None:
    berlin = window(timezone="Europe/Berlin", start="09:00", end="17:00")
    assert berlin.is_active(utc("2026-01-15T08:00"))  # 09:00 in Berlin (CET, UTC+1)
    assert not berlin.is_active(utc("2026-01-15T16:00"))  # 17:00 in Berlin
    assert berlin.is_active(utc("2026-07-15T07:00"))  # 09:00 in summer (CEST, UTC+2)


def test_a_dst_change_inside_the_window_makes_it_an_hour_shorter() -> None:
    # 2026-03-29: Berlin clocks jump from 02:00 to 03:00.
    night = window(timezone="Europe/Berlin", start="01:00", end="04:00")
    assert night.is_active(utc("2026-03-29T00:00"))  # 01:00 CET
    assert night.is_active(utc("2026-03-29T01:59"))  # 03:59 CEST
    assert not night.is_active(utc("2026-03-29T02:00"))  # 04:00 CEST


def test_a_one_off_window_and_naive_times_in_its_zone() -> None:
    move = window(**{"from": "2026-12-05T20:00:00Z", "until": "2026-12-06T08:00:00Z"})
    assert move.is_active(utc("2026-12-05T20:00"))
    assert not move.is_active(utc("2026-12-06T08:00"))
    local = window(
        timezone="Asia/Kolkata", **{"from": "2026-12-05T10:00", "until": "2026-12-05T11:00"}
    )
    assert local.is_active(utc("2026-12-05T04:30"))  # 10:00 IST


def test_matchers_limit_which_alerts_a_window_covers() -> None:
    eu = window(start="00:00", end="24:00", matchers=['cluster=~"eu-.*"'])
    now = utc("2026-11-21T12:00")
    assert active_window([eu], now, {"cluster": "eu-1"}) is eu
    assert active_window([eu], now, {"cluster": "us-1"}) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timezone": "Mars/Olympus", "start": "01:00", "end": "02:00"}, "unknown time zone"),
        ({"start": "25:00", "end": "02:00"}, "not a time of day"),
        ({"start": "02:00", "end": "02:00"}, "zero length"),
        ({}, "give either start and end"),
        ({"start": "01:00", "end": "02:00", "from": "2026-01-01T00:00Z"}, "give either"),
        ({"from": "2026-01-02T00:00Z", "until": "2026-01-01T00:00Z"}, "until must be after"),
        ({"start": "01:00", "end": "02:00", "matchers": ['cluster=~"(']}, "matchers"),
        ({"start": "01:00", "end": "02:00", "weekdays": ["friday"]}, "weekdays"),
    ],
)
def test_mistakes_are_named(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        window(**fields)


# -- property: the implementation agrees with a brute-force walk over local days ---------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


def reference_active(
    zone: str, days: list[str], start_minute: int, end_minute: int, now: datetime
) -> bool:
    """Walk the local calendar around `now`: is `now` in any occurrence's [start, end)?"""
    tz = ZoneInfo(zone)
    local_today = now.astimezone(tz).date()
    for offset in range(-2, 2):
        day = local_today + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in days:
            continue
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
        begins = (midnight.replace(tzinfo=None) + timedelta(minutes=start_minute)).replace(
            tzinfo=tz
        )
        end_day = day if end_minute > start_minute else day + timedelta(days=1)
        end_midnight = datetime(end_day.year, end_day.month, end_day.day)
        ends = (end_midnight + timedelta(minutes=end_minute % 1440)).replace(tzinfo=tz)
        if end_minute == 1440:
            ends = (end_midnight + timedelta(days=1 if end_day == day else 0)).replace(tzinfo=tz)
        if begins.astimezone(UTC) <= now < ends.astimezone(UTC):
            return True
    return False


def clock(minute: int) -> str:
    return "24:00" if minute == 1440 else f"{minute // 60:02d}:{minute % 60:02d}"


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    days=st.lists(st.sampled_from(WEEKDAYS), min_size=1, unique=True),
    start=st.integers(0, 1439),
    end=st.integers(1, 1440),
    now=st.datetimes(datetime(2025, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
)
def test_is_active_matches_a_brute_force_reference(
    zone: str, days: list[str], start: int, end: int, now: datetime
) -> None:
    if start == end:
        return
    w = window(timezone=zone, weekdays=days, start=clock(start), end=clock(end))
    assert w.is_active(now) == reference_active(zone, days, start, end, now)
