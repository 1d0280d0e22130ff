"""Maintenance windows: times when automation does not act, for every alert or only some.

Two forms, listed in the config's `guards.maintenance_windows`::

    - name: saturday-patching        # weekly, in wall-clock time of `timezone`
      timezone: Europe/Berlin
      weekdays: [sat]                # the days a window STARTS on; default every day
      start: "22:00"
      end: "04:00"                   # before start: crosses midnight, Sat 22:00 to Sun 04:00
      matchers: ['cluster="eu-1"']   # optional: only alerts these all match
    - name: dc-move                  # one-off
      from: "2026-12-05T20:00:00Z"
      until: "2026-12-06T08:00:00Z"

Every interval is half-open, [start, end): at `end` automation acts again. Nothing here reads
the clock; callers pass `now`, a timezone-aware instant.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Final, Literal, Self, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from remediator.rules.matcher import Matcher, MatcherSyntaxError, parse_matcher

__all__ = ["WEEKDAYS", "MaintenanceWindow", "Weekday", "active_window"]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: Final[tuple[Weekday, ...]] = get_args(Weekday)
"""The weekday names in `date.weekday()` order: WEEKDAYS[0] is Monday."""

_MINUTES_PER_DAY: Final = 24 * 60
_CLOCK: Final = re.compile(r"^(\d{1,2}):(\d{2})$")
_WHAT_TO_WRITE: Final = (
    'give either start and end for a weekly window (e.g. start: "22:00", end: "02:00", '
    "optionally weekdays: [sat, sun]) or from and until for a one-off window "
    '(e.g. from: "2026-12-05T20:00:00Z", until: "2026-12-06T08:00:00Z")'
)


def _clock_minutes(text: str, *, end: bool = False) -> int:
    """Minutes since local midnight of "HH:MM"; "24:00" (= 1440) only as an `end`."""
    found = _CLOCK.match(text)
    hours, minutes = (int(found[1]), int(found[2])) if found else (-1, -1)
    in_day = 0 <= hours <= 23 and 0 <= minutes <= 59
    if in_day or (end and (hours, minutes) == (24, 0)):
        return hours * 60 + minutes
    latest = "24:00 (the end of the day)" if end else "23:59"
    raise ValueError(f'{text!r} is not a time of day: write "HH:MM", 00:00 to {latest}')


def _not_a_number(value: object) -> object:
    # YAML 1.1 reads an unquoted 22:00 as the base-60 number 1320: say so instead of pydantic's
    # bare "should be a valid string". Not converted back: `start: 9` would silently be 00:09.
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, int) and 60 <= value <= _MINUTES_PER_DAY:
            written = f"{value // 60}:{value % 60:02d}"
            raise ValueError(
                f"got the number {value}: YAML reads an unquoted {written} as a number; "
                f'write it in quotes, "{_clock(value)}"'
            )
        raise ValueError(
            f'got the number {value}: write the time of day in quotes as "HH:MM", e.g. "22:00"'
        )
    return value


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _check_start(text: str) -> str:
    return _clock(_clock_minutes(text))


def _check_end(text: str) -> str:
    return _clock(_clock_minutes(text, end=True))


def _check_matcher(text: str) -> str:
    try:
        parse_matcher(text)
    except MatcherSyntaxError as error:
        raise ValueError(str(error)) from None
    return text


def _clock_schema(example: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}$", "examples": [example]})


StartClock = Annotated[
    str, BeforeValidator(_not_a_number), AfterValidator(_check_start), _clock_schema("22:00")
]
EndClock = Annotated[
    str, BeforeValidator(_not_a_number), AfterValidator(_check_end), _clock_schema("02:00")
]
MatcherText = Annotated[str, AfterValidator(_check_matcher)]


def _utc(now: datetime) -> datetime:
    # A naive datetime would be read as the host's local time by astimezone(): refuse it.
    if now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")
    return now.astimezone(UTC)


class MaintenanceWindow(BaseModel):
    """A time when automation does not act: weekly (weekdays, start, end) or one-off (from,
    until), optionally only for the alerts its matchers select."""

    # populate_by_name: Python callers may write from_=...; YAML writes `from`.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True
    )

    name: str = Field(min_length=1)
    """Names the window in decisions: "maintenance window <name> is active"."""
    timezone: str = "UTC"
    """IANA time zone of start and end (and of from/until written without an offset), e.g.
    Europe/Berlin. Local wall-clock time, so a weekly window follows daylight saving time."""
    weekdays: list[Weekday] | None = None
    """Weekly window: the days it starts on (mon, tue, wed, thu, fri, sat, sun); default every
    day. A window crossing midnight belongs to the day it starts."""
    start: StartClock | None = None
    """Weekly window: local start time, "HH:MM"."""
    end: EndClock | None = None
    """Weekly window: local end time, "HH:MM" (exclusive); "24:00" is the end of the day. Before
    `start`, the window ends the next day: 22:00 to 02:00 crosses midnight."""
    from_: datetime | None = Field(None, alias="from")
    """One-off window: when it begins, ISO 8601, e.g. "2026-12-05T20:00:00Z". Without an offset,
    a wall-clock time in `timezone`."""
    until: datetime | None = None
    """One-off window: when it ends (exclusive), after `from`; written like `from`."""
    matchers: list[MatcherText] = Field(default_factory=list)
    """Alertmanager matchers, e.g. 'cluster="eu-1"': the window covers only alerts they all
    match. Empty: every alert."""

    _zone: ZoneInfo = PrivateAttr()
    _matchers: tuple[Matcher, ...] = PrivateAttr(())
    _days: frozenset[int] = PrivateAttr(frozenset())  # date.weekday() numbers
    _start: int = PrivateAttr(0)  # minutes after local midnight of the start day
    _end: int = PrivateAttr(0)  # likewise, after _start; above 1440 when crossing midnight
    _once: tuple[datetime, datetime] | None = PrivateAttr(None)  # a one-off window, in UTC

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        # ValueError: malformed keys ("", "/etc/x"); OSError: a folder such as "Europe".
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f'unknown time zone {value!r}: use an IANA time zone name such as "Europe/Berlin" '
                'or "UTC"'
            ) from None
        return value

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        """Check that exactly one form is given, and precompute what `is_active` needs."""
        self._check_form()
        self._zone = ZoneInfo(self.timezone)
        self._matchers = tuple(parse_matcher(text) for text in self.matchers)
        if self.from_ is not None and self.until is not None:
            self._once = self._resolve_once(self.from_, self.until)
        elif self.start is not None and self.end is not None:
            self._start, self._end = _span(self.start, self.end)
            self._days = frozenset(WEEKDAYS.index(day) for day in self.weekdays or WEEKDAYS)
        return self

    def _check_form(self) -> None:
        weekly = (self.start, self.end, self.weekdays) != (None, None, None)
        once = (self.from_, self.until) != (None, None)
        if weekly == once:
            raise ValueError(
                f"{_WHAT_TO_WRITE}, not both" if weekly else f"{_WHAT_TO_WRITE}; got neither"
            )
        if weekly and (self.start is None or self.end is None):
            raise ValueError('a weekly window needs both start and end, e.g. "22:00" and "02:00"')
        if weekly and not (self.weekdays is None or self.weekdays):
            raise ValueError("weekdays is empty: list the days, e.g. [sat, sun], or leave it out")
        if once and (self.from_ is None or self.until is None):
            raise ValueError("a one-off window needs both from and until")

    def _resolve_once(self, begins: datetime, ends: datetime) -> tuple[datetime, datetime]:
        interval = self._instant(begins), self._instant(ends)
        if interval[1] <= interval[0]:
            raise ValueError(
                f"until ({ends.isoformat()}) must be after from ({begins.isoformat()})"
            )
        return interval

    def _instant(self, value: datetime) -> datetime:
        # A naive from/until is wall-clock time in `timezone`, read like a weekly window's times.
        if value.utcoffset() is None:
            value = value.replace(tzinfo=self._zone)
        return value.astimezone(UTC)

    def applies_to(self, labels: Mapping[str, str]) -> bool:
        """Whether the window covers an alert with these labels (all matchers hold)."""
        return all(matcher.matches(labels) for matcher in self._matchers)

    def is_active(self, now: datetime) -> bool:
        """Whether `now` (timezone-aware) falls inside an occurrence of the window."""
        return self._occurrence_end(_utc(now)) is not None

    def ends_at(self, now: datetime) -> datetime | None:
        """When the window, active at `now`, stops being active (UTC); None if not active.

        Occurrences that meet or overlap count as one: a weekly window on sat and sun from
        00:00 to 24:00, active on Saturday, ends on Monday at 00:00. A window that never
        ends (every day, 00:00 to 24:00) reports the end of the occurrences a week ahead.
        """
        end = self._occurrence_end(_utc(now))
        for _ in WEEKDAYS:
            following = None if end is None else self._occurrence_end(end)
            if following is None:
                break
            end = following
        return end

    def _occurrence_end(self, now: datetime) -> datetime | None:
        """The latest end of the occurrences containing `now` (UTC), or None."""
        return max(
            (end for start, end in self._occurrences(now) if start <= now < end), default=None
        )

    def _occurrences(self, now: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The [start, end) intervals, in UTC, of the occurrences that may contain `now`."""
        if self._once is not None:
            yield self._once
            return
        today = now.astimezone(self._zone).date()
        # An occurrence ends at the latest at the end of the day after it starts (end <= 24:00
        # the next day), so only those starting yesterday and today can contain `now`.
        for day in (today - timedelta(days=1), today):
            if day.weekday() in self._days:
                yield self._local(day, self._start), self._local(day, self._end)

    def _local(self, day: date, minutes: int) -> datetime:
        """The instant (UTC) of wall-clock `minutes` after midnight starting `day`, in the zone.

        Built with `datetime.combine(..., tzinfo=zone)`, so fold=0 (PEP 495), and compared
        in UTC. On a DST change, a local time that does not exist (spring forward) is read
        with the offset before the change: Berlin's 02:30 on 2026-03-29 is 03:30 CEST. A time
        that repeats (fall back) means its first occurrence. An occurrence keeps its wall-clock
        bounds, so it is an hour shorter or longer across a change; one that starts inside the
        skipped hour and ends before its shifted start is empty that day. Chosen over
        normalising gaps because it is what zoneinfo does by default, and simple to predict.
        """
        days, rest = divmod(minutes, _MINUTES_PER_DAY)
        wall = time(rest // 60, rest % 60)
        return datetime.combine(day + timedelta(days=days), wall, tzinfo=self._zone).astimezone(UTC)


def _span(start: str, end: str) -> tuple[int, int]:
    """A weekly window's local [start, end) in minutes after the start day's midnight."""
    begins, ends = _clock_minutes(start), _clock_minutes(end, end=True)
    if begins == ends:
        raise ValueError(
            f'start and end are both "{start}": a window of zero length; for a whole day '
            'write start: "00:00", end: "24:00"'
        )
    # An end before the start is on the next day: 22:00 to 02:00 crosses midnight.
    return begins, ends if ends > begins else ends + _MINUTES_PER_DAY


def active_window(
    windows: Sequence[MaintenanceWindow], now: datetime, labels: Mapping[str, str]
) -> MaintenanceWindow | None:
    """The first of `windows` active at `now` that covers an alert with `labels`, or None."""
    return next((w for w in windows if w.applies_to(labels) and w.is_active(now)), None)
