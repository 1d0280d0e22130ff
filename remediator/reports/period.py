"""The period a report covers, from `from` / `to` as users type them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

DEFAULT_SPAN = timedelta(days=30)
# A report reads every incident of its period; beyond this, ask for several.
LONGEST = timedelta(days=3 * 366)


def parse_period(
    start_text: str | None, end_text: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """[start, end) from RFC 3339 times (`2026-11-01T00:00:00Z`) or dates (`2026-11-01`).

    A date as `to` includes that whole day. Without `to` the period ends now; without
    `from` it starts 30 days before its end. Raises ValueError naming the bad parameter.
    """
    end = parse_moment("to", end_text, end_of_day=True) if end_text else now
    start = parse_moment("from", start_text, end_of_day=False) if start_text else end - DEFAULT_SPAN
    if start >= end:
        raise ValueError(f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    if end - start > LONGEST:
        raise ValueError("the period is longer than 3 years: ask for shorter periods")
    return start, end


def parse_moment(name: str, text: str, *, end_of_day: bool) -> datetime:
    """A date or RFC 3339 time as an aware UTC datetime; a date as `end_of_day` is the next
    midnight. Raises ValueError naming the parameter `name`."""
    value = text.strip()
    try:
        if len(value) == 10:  # YYYY-MM-DD
            day = date.fromisoformat(value) + timedelta(days=1 if end_of_day else 0)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{name}={text!r} is not a date (2026-11-01) or an RFC 3339 time (2026-11-01T00:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{name}={text!r} has no time zone: add Z or an offset like +01:00")
    return moment.astimezone(UTC)
