"""Maintenance windows: times when automation does not act, optionally only for some alerts.

Two forms, in the config's `guards.maintenance_windows`::

    - name: saturday-patching           # recurring, in local wall-clock time
      timezone: Europe/Berlin
      weekdays: [sat]                   # the day a window STARTS; default every day
      start: "22:00"
      end: "04:00"                      # before start: the window crosses midnight
      matchers: ['cluster="eu-1"']      # optional: only alerts these match
    - {name: dc-move, from: "2026-12-05T20:00:00Z", until: "2026-12-06T08:00:00Z"}   # one-off

Windows are pure: `is_active(now)` is a function of the window and the instant only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from remediator.rules.matcher import Matcher, MatcherSyntaxError, parse_matcher

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class MaintenanceWindow(BaseModel):
    """A time when automation does not act: recurring (weekdays, start, end) or one-off."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True
    )

    name: str = Field(min_length=1)
    """Shown in decisions: "maintenance window <name> is active"."""
    timezone: str = "UTC"
    """IANA time zone of start/end (and of naive from/until), e.g. Europe/Berlin."""
    weekdays: list[Weekday] | None = None
    """Days a recurring window starts on (mon … sun); default every day."""
    start: str | None = None
    """Local start time, HH:MM."""
    end: str | None = None
    """Local end time, HH:MM (24:00 = midnight); before `start` = the next day."""
    from_: datetime | None = Field(None, alias="from")
    """One-off window start (ISO 8601)."""
    until: datetime | None = None
    """One-off window end (ISO 8601), after `from`."""
    matchers: list[str] = Field(default_factory=list)
    """Alertmanager matchers; the window covers only alerts they all match. Empty: every alert."""

    _zone: ZoneInfo = PrivateAttr()
    _parsed: tuple[Matcher, ...] = PrivateAttr(default=())

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin or UTC"
            ) from None
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None and not _CLOCK.match(value):
            raise ValueError(f"{value!r} is not a time of day: write HH:MM, e.g. 22:00")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        recurring = self.start is not None or self.end is not None or self.weekdays is not None
        one_off = self.from_ is not None or self.until is not None
        if recurring == one_off:
            raise ValueError("give either start and end (with optional weekdays) or from and until")
        if recurring and (self.start is None or self.end is None):
            raise ValueError("a recurring window needs both start and end, e.g. 22:00 and 04:00")
        if recurring and self.start == self.end:
            raise ValueError("start equals end: a window of zero length")
        if one_off and (self.from_ is None or self.until is None):
            raise ValueError("a one-off window needs both from and until")
        self._zone = ZoneInfo(self.timezone)
        if one_off and self._utc(self.until) <= self._utc(self.from_):
            raise ValueError("until must be after from")
        try:
            self._parsed = tuple(parse_matcher(text) for text in self.matchers)
        except MatcherSyntaxError as exc:
            raise ValueError(f"matchers: {exc}") from None
        return self

    def applies_to(self, labels: Mapping[str, str]) -> bool:
        """Whether the window covers an alert with these labels."""
        return all(matcher.matches(labels) for matcher in self._parsed)

    def is_active(self, now: datetime) -> bool:
        """Whether `now` (timezone-aware) falls inside an occurrence of the window."""
        return self.ends_at(now) is not None

    def ends_at(self, now: datetime) -> datetime | None:
        """When the occurrence containing `now` ends (UTC); None when none contains it."""
        for start, end in self._occurrences(now):
            if start <= now < end:
                return end
        return None

    def _occurrences(self, now: datetime) -> list[tuple[datetime, datetime]]:
        if self.from_ is not None and self.until is not None:
            return [(self._utc(self.from_), self._utc(self.until))]
        assert self.start is not None
        assert self.end is not None
        today = now.astimezone(self._zone).date()
        days = self.weekdays or list(WEEKDAYS)
        found = []
        # An occurrence that contains `now` started today or (crossing midnight) yesterday.
        for day in (today - timedelta(days=1), today):
            if WEEKDAYS[day.weekday()] in days:
                found.append(self._occurrence(day, self.start, self.end))
        return found

    def _occurrence(self, day: date, start: str, end: str) -> tuple[datetime, datetime]:
        begins = self._local(day, start)
        end_day = day + timedelta(days=1) if end <= start or end == "24:00" else day
        ends = self._local(end_day, "00:00" if end == "24:00" else end)
        return begins, ends

    def _local(self, day: date, clock: str) -> datetime:
        # Wall-clock time in the zone. A time skipped or repeated by a DST change resolves as
        # zoneinfo does (fold=0): the window may be an hour shorter or longer that day.
        hours, minutes = (int(part) for part in clock.split(":"))
        return datetime.combine(day, time(hours, minutes), tzinfo=self._zone).astimezone(UTC)

    def _utc(self, value: datetime | None) -> datetime:
        assert value is not None
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(self.timezone))
        return value.astimezone(UTC)


def active_window(
    windows: Sequence[MaintenanceWindow], now: datetime, labels: Mapping[str, str]
) -> MaintenanceWindow | None:
    """The first window active at `now` that covers an alert with `labels`."""
    return next((w for w in windows if w.applies_to(labels) and w.is_active(now)), None)
