"""Maintenance windows: weekdays, midnight, time zones and DST, one-off windows, matchers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from remediator.guards.windows import MaintenanceWindow, active_window


def utc(text: str) -> datetime:
    """An instant written as a UTC wall-clock time, e.g. "2026-11-20T22:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(**fields: object) -> MaintenanceWindow:
    """A window validated as the config loader does, from YAML-like data."""
    return MaintenanceWindow.model_validate({"name": "w", **fields})


def once(begins: str, ends: str, **fields: object) -> MaintenanceWindow:
    """A one-off window (`from` is a Python keyword, so it cannot be a keyword argument)."""
    return window(**{"from": begins, "until": ends, **fields})


# -- weekly windows ------------------------------------------------------------------------
# 2026-11-16 is a Monday, 2026-11-20 a Friday.


def test_a_weekly_window_is_active_on_its_weekdays_between_start_and_end() -> None:
    office = window(weekdays=["mon", "wed"], start="09:00", end="17:00")
    assert office.is_active(utc("2026-11-16T09:00"))  # the start is inclusive
    assert office.is_active(utc("2026-11-16T16:59:59"))
    assert not office.is_active(utc("2026-11-16T17:00"))  # the end is exclusive
    assert not office.is_active(utc("2026-11-16T08:59"))
    assert not office.is_active(utc("2026-11-17T12:00"))  # Tuesday
    assert office.is_active(utc("2026-11-18T12:00"))  # Wednesday


def test_without_weekdays_a_window_recurs_every_day() -> None:
    nightly = window(start="01:00", end="02:00")
    for day in range(16, 23):
        assert nightly.is_active(utc(f"2026-11-{day}T01:30"))


def test_a_window_crossing_midnight_belongs_to_the_day_it_starts() -> None:
    friday_night = window(weekdays=["fri"], start="22:00", end="02:00")
    assert not friday_night.is_active(utc("2026-11-20T21:59"))
    assert friday_night.is_active(utc("2026-11-20T22:00"))
    assert friday_night.is_active(utc("2026-11-21T01:00"))  # Saturday morning
    assert not friday_night.is_active(utc("2026-11-21T02:00"))  # the end is exclusive
    assert not friday_night.is_active(utc("2026-11-21T23:00"))  # Saturday night
    assert not friday_night.is_active(utc("2026-11-20T01:00"))  # Friday morning: Thursday's
    assert friday_night.ends_at(utc("2026-11-21T01:00")) == utc("2026-11-21T02:00")


def test_24_00_ends_a_window_at_midnight() -> None:
    evening = window(weekdays=["sat"], start="20:00", end="24:00")
    assert evening.is_active(utc("2026-11-21T23:59:59"))
    assert not evening.is_active(utc("2026-11-22T00:00"))
    assert evening.ends_at(utc("2026-11-21T20:00")) == utc("2026-11-22T00:00")


def test_times_may_omit_the_leading_zero_and_are_stored_as_hh_mm() -> None:
    morning = window(start="9:30", end="24:00")
    assert (morning.start, morning.end) == ("09:30", "24:00")


# -- time zones and daylight saving time ---------------------------------------------------


def test_start_and_end_are_wall_clock_times_in_the_window_zone() -> None:
    berlin = window(timezone="Europe/Berlin", start="09:00", end="17:00")
    assert berlin.is_active(utc("2026-01-15T08:00"))  # 09:00 CET (UTC+1)
    assert not berlin.is_active(utc("2026-01-15T07:59"))
    assert not berlin.is_active(utc("2026-01-15T16:00"))  # 17:00 CET
    assert berlin.is_active(utc("2026-07-15T07:00"))  # 09:00 CEST (UTC+2)
    assert not berlin.is_active(utc("2026-07-15T15:00"))  # 17:00 CEST


def test_weekdays_are_local_days() -> None:
    monday_night = window(timezone="Asia/Kolkata", weekdays=["mon"], start="00:00", end="06:00")
    assert monday_night.is_active(utc("2026-11-15T19:00"))  # Sunday in UTC, Monday 00:30 IST
    assert not monday_night.is_active(utc("2026-11-16T19:00"))  # Tuesday 00:30 IST


def test_a_window_across_spring_forward_is_an_hour_shorter() -> None:
    # 2026-03-29: Berlin's clocks jump from 02:00 CET to 03:00 CEST (01:00 UTC).
    night = window(timezone="Europe/Berlin", start="01:00", end="04:00")
    assert not night.is_active(utc("2026-03-28T23:59"))
    assert night.is_active(utc("2026-03-29T00:00"))  # 01:00 CET
    assert night.is_active(utc("2026-03-29T01:59"))  # 03:59 CEST
    assert not night.is_active(utc("2026-03-29T02:00"))  # 04:00 CEST
    assert night.ends_at(utc("2026-03-29T00:30")) == utc("2026-03-29T02:00")


def test_a_window_across_fall_back_is_an_hour_longer() -> None:
    # 2026-10-25: Berlin's clocks go back from 03:00 CEST to 02:00 CET (01:00 UTC).
    night = window(timezone="Europe/Berlin", start="01:00", end="04:00")
    assert not night.is_active(utc("2026-10-24T22:59"))
    assert night.is_active(utc("2026-10-24T23:00"))  # 01:00 CEST
    assert night.is_active(utc("2026-10-25T02:59"))  # 03:59 CET
    assert night.ends_at(utc("2026-10-24T23:00")) == utc("2026-10-25T03:00")  # 04:00 CET


def test_a_skipped_local_time_reads_with_the_offset_before_the_change() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29; read as CET it is 03:30 CEST (01:30 UTC).
    late = window(timezone="Europe/Berlin", weekdays=["sun"], start="02:30", end="05:00")
    assert not late.is_active(utc("2026-03-29T01:29"))
    assert late.is_active(utc("2026-03-29T01:30"))


def test_a_repeated_local_time_means_its_first_occurrence() -> None:
    # 02:30 happens twice in Berlin on 2026-10-25: first at 00:30 UTC (CEST), then 01:30 (CET).
    repeated = window(timezone="Europe/Berlin", weekdays=["sun"], start="02:30", end="03:30")
    assert not repeated.is_active(utc("2026-10-25T00:29"))
    assert repeated.is_active(utc("2026-10-25T00:30"))
    assert repeated.ends_at(utc("2026-10-25T00:30")) == utc("2026-10-25T02:30")  # 03:30 CET


# -- one-off windows -----------------------------------------------------------------------


def test_a_one_off_window_is_active_from_until() -> None:
    move = once("2026-12-05T20:00:00Z", "2026-12-06T08:00:00+01:00")
    assert not move.is_active(utc("2026-12-05T19:59:59"))
    assert move.is_active(utc("2026-12-05T20:00"))
    assert move.is_active(utc("2026-12-06T06:59"))
    assert not move.is_active(utc("2026-12-06T07:00"))  # 08:00+01:00, exclusive
    assert move.ends_at(utc("2026-12-05T20:00")) == utc("2026-12-06T07:00")
    assert move.ends_at(utc("2026-12-06T07:00")) is None


def test_one_off_times_without_an_offset_are_in_the_window_zone() -> None:
    local = once("2026-12-05T10:00", "2026-12-05T11:00", timezone="Asia/Kolkata")
    assert local.is_active(utc("2026-12-05T04:30"))  # 10:00 IST
    assert not local.is_active(utc("2026-12-05T05:30"))  # 11:00 IST


def test_now_of_another_zone_is_the_same_instant() -> None:
    move = once("2026-12-05T20:00:00Z", "2026-12-05T21:00:00Z")
    assert move.is_active(datetime(2026, 12, 5, 21, 30, tzinfo=ZoneInfo("Europe/Berlin")))
    assert move.ends_at(utc("2026-12-05T20:30")) == utc("2026-12-05T21:00")


def test_a_naive_now_is_refused_rather_than_read_as_host_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        window(start="00:00", end="24:00").is_active(datetime(2026, 1, 1))


# -- ends_at -------------------------------------------------------------------------------


def test_ends_at_is_none_when_inactive() -> None:
    assert window(start="01:00", end="02:00").ends_at(utc("2026-11-16T03:00")) is None


def test_ends_at_joins_occurrences_that_meet() -> None:
    weekend = window(weekdays=["sat", "sun"], start="00:00", end="24:00")
    assert weekend.ends_at(utc("2026-11-21T12:00")) == utc("2026-11-23T00:00")  # Monday


def test_ends_at_of_a_window_that_never_ends_is_a_week_ahead() -> None:
    always = window(start="00:00", end="24:00")
    assert always.ends_at(utc("2026-11-21T12:00")) == utc("2026-11-29T00:00")


# -- matchers ------------------------------------------------------------------------------


def test_matchers_limit_the_alerts_a_window_covers() -> None:
    eu = window(start="00:00", end="24:00", matchers=['cluster=~"eu-.*"', 'team!="db"'])
    assert eu.applies_to({"cluster": "eu-1", "team": "web"})
    assert eu.applies_to({"cluster": "eu-2"})  # a missing label is ""
    assert not eu.applies_to({"cluster": "eu-1", "team": "db"})
    assert not eu.applies_to({"cluster": "us-1"})


def test_a_window_without_matchers_covers_every_alert() -> None:
    assert window(start="00:00", end="24:00").applies_to({})


def test_active_window_is_the_first_active_window_that_covers_the_alert() -> None:
    eu = window(name="eu", start="00:00", end="24:00", matchers=['cluster="eu-1"'])
    later = window(name="later", start="18:00", end="19:00")
    everything = window(name="everything", start="00:00", end="24:00")
    now = utc("2026-11-21T12:00")
    assert active_window([eu, later, everything], now, {"cluster": "eu-1"}) is eu
    assert active_window([eu, later, everything], now, {"cluster": "us-1"}) is everything
    assert active_window([eu, later], now, {"cluster": "us-1"}) is None
    assert active_window([], now, {}) is None


# -- validation ----------------------------------------------------------------------------

NEITHER = "give either start and end for a weekly window"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"timezone": "Europe/Berln", "start": "01:00", "end": "02:00"},
            "unknown time zone 'Europe/Berln': use an IANA time zone name such as "
            '"Europe/Berlin"',
        ),
        ({"timezone": "Europe", "start": "01:00", "end": "02:00"}, "unknown time zone 'Europe'"),
        ({"timezone": "", "start": "01:00", "end": "02:00"}, "unknown time zone ''"),
        ({"start": "25:00", "end": "02:00"}, "'25:00' is not a time of day: write \"HH:MM\""),
        ({"start": "12:60", "end": "13:00"}, "'12:60' is not a time of day"),
        ({"start": "24:00", "end": "02:00"}, "'24:00' is not a time of day"),
        ({"start": "noon", "end": "13:00"}, "'noon' is not a time of day"),
        ({"start": "01:00", "end": "24:01"}, "00:00 to 24:00 (the end of the day)"),
        (
            {"start": 1320, "end": "02:00"},
            'reads an unquoted 22:00 as a number; write it in quotes, "22:00"',
        ),
        (
            {"start": 9, "end": "10:00"},
            'got the number 9: write the time of day in quotes as "HH:MM"',
        ),
        ({"start": "02:00", "end": "02:00"}, "a window of zero length"),
        ({"start": "00:00", "end": "00:00"}, 'for a whole day write start: "00:00", end: "24:00"'),
        ({}, f"{NEITHER}"),
        ({"weekdays": ["sat"]}, "a weekly window needs both start and end"),
        ({"start": "01:00"}, "a weekly window needs both start and end"),
        ({"start": "01:00", "end": "02:00", "weekdays": []}, "weekdays is empty"),
        ({"start": "01:00", "end": "02:00", "weekdays": ["friday"]}, "weekdays.0"),
        ({"start": "01:00", "end": "02:00", "from": "2026-01-01T00:00Z"}, "not both"),
        ({"weekdays": ["sat"], "from": "2026-01-01T00:00Z", "until": "2026-01-02T00:00Z"}, "both"),
        ({"from": "2026-01-01T00:00Z"}, "a one-off window needs both from and until"),
        (
            {"from": "2026-01-02T00:00Z", "until": "2026-01-01T00:00Z"},
            "until (2026-01-01T00:00:00+00:00) must be after from (2026-01-02T00:00:00+00:00)",
        ),
        ({"from": "2026-01-01T00:00Z", "until": "2026-01-01T01:00+01:00"}, "must be after"),
        ({"start": "01:00", "end": "02:00", "matchers": ['cluster=~"("']}, "invalid regular"),
        ({"start": "01:00", "end": "02:00", "name": ""}, "name"),
        ({"start": "01:00", "end": "02:00", "begin": "01:00"}, "begin"),
    ],
)
def test_mistakes_are_named_with_what_to_write(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        window(**fields)
    assert message in str(caught.value)


def test_neither_form_says_what_to_write() -> None:
    with pytest.raises(ValidationError) as caught:
        MaintenanceWindow.model_validate({"name": "w"})
    message = caught.value.errors()[0]["msg"]
    assert 'start: "22:00", end: "02:00"' in message
    assert 'from: "2026-12-05T20:00:00Z"' in message


def test_a_bad_matcher_is_reported_at_its_position() -> None:
    with pytest.raises(ValidationError) as caught:
        window(start="01:00", end="02:00", matchers=['team="db"', "team"])
    [error] = caught.value.errors()
    assert error["loc"] == ("matchers", 1)
    assert error["msg"] == "Value error, invalid matcher 'team': no operator found; " + (
        'use name="value", name!="value", name=~"regex" or name!~"regex"'
    )


def test_every_field_is_described_in_the_json_schema() -> None:
    properties = MaintenanceWindow.model_json_schema()["properties"]
    assert set(properties) >= {"name", "from", "until", "start", "end", "weekdays", "matchers"}
    assert all(spec.get("description") for spec in properties.values())


# -- property: the implementation agrees with a brute-force walk over local days -----------

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
FIRST, LAST = datetime(2025, 1, 1), datetime(2027, 12, 31)


def reference_is_active(
    zone: ZoneInfo, days: frozenset[str], start: int, end: int, now: datetime
) -> bool:
    """Walk local days from two before `now` to one after; is `now` in an occurrence?

    `start` and `end` are minutes after local midnight; an end at or before the start is on
    the next day. Local times are naive wall-clock arithmetic, then given the zone (fold=0).
    """
    today = now.astimezone(zone).date()
    length = end - start if end > start else end + 24 * 60 - start
    for offset in range(-2, 2):
        day = today + timedelta(days=offset)
        if DAY_NAMES[day.weekday()] not in days:
            continue
        midnight = datetime(day.year, day.month, day.day)  # naive: wall-clock arithmetic
        begins = midnight + timedelta(minutes=start)
        ends = begins + timedelta(minutes=length)
        if in_zone(begins, zone) <= now < in_zone(ends, zone):
            return True
    return False


def in_zone(wall: datetime, zone: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=zone).astimezone(UTC)


@cache
def offset_changes(zone_name: str) -> tuple[datetime, ...]:
    """The instants (UTC) when the zone's UTC offset changes, found hour by hour."""
    zone = ZoneInfo(zone_name)
    found: list[datetime] = []
    hour = FIRST.replace(tzinfo=UTC)
    while hour < LAST.replace(tzinfo=UTC):
        if (
            hour.astimezone(zone).utcoffset()
            != (hour + timedelta(hours=1)).astimezone(zone).utcoffset()
        ):
            found.append(hour + timedelta(hours=1))
        hour += timedelta(hours=1)
    return tuple(found)


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# Half hours are over-sampled: DST changes happen on them (Lord Howe moves by 30 minutes).
minutes = st.one_of(st.integers(0, 24 * 60 - 1), st.integers(0, 47).map(lambda half: half * 30))


@st.composite
def instants(draw: st.DrawFn, zone_name: str) -> datetime:
    """Any instant, or one within a day of one of the zone's offset changes."""
    anywhere = st.datetimes(FIRST, LAST, timezones=st.just(UTC))
    changes = offset_changes(zone_name)
    if not changes or draw(st.booleans()):
        return draw(anywhere)
    near = draw(st.sampled_from(changes))
    return near + timedelta(seconds=draw(st.integers(-26 * 3600, 26 * 3600)))


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    zone_name=st.sampled_from(ZONES),
    days=st.frozensets(st.sampled_from(DAY_NAMES), min_size=1),
    start=minutes,
    end=st.one_of(minutes, st.just(24 * 60)),
)
def test_is_active_agrees_with_a_brute_force_reference(
    data: st.DataObject, zone_name: str, days: frozenset[str], start: int, end: int
) -> None:
    if start == end:
        return  # refused: a window of zero length
    now = data.draw(instants(zone_name))
    weekly = window(timezone=zone_name, weekdays=sorted(days), start=clock(start), end=clock(end))
    expected = reference_is_active(ZoneInfo(zone_name), days, start, end, now)
    assert weekly.is_active(now) == expected
    never_ends = (start, end, len(days)) == (0, 24 * 60, len(DAY_NAMES))
    assert_ends_at_is_consistent(weekly, now, active=expected, never_ends=never_ends)


def assert_ends_at_is_consistent(
    weekly: MaintenanceWindow, now: datetime, *, active: bool, never_ends: bool
) -> None:
    """Active: the window lasts until `ends_at` and not at it. Inactive: no end."""
    ends = weekly.ends_at(now)
    if not active:
        assert ends is None
        return
    assert ends is not None
    assert ends > now
    assert weekly.is_active(ends - timedelta(microseconds=1))
    assert weekly.is_active(ends) == never_ends
