"""Prometheus-style duration strings (`30s`, `5m`, `1h30m`, `1d`) as a pydantic type."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS: dict[str, int] = {
    "y": 365 * 86400 * 1000,
    "w": 7 * 86400 * 1000,
    "d": 86400 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}
# Same grammar as Prometheus' model.ParseDuration: units in descending order, each at most once.
_PATTERN = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
DURATION_REGEX = r"^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$"


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m` into a timedelta; raise ValueError naming the accepted form."""
    if text == "0":
        return timedelta(0)
    match = _PATTERN.match(text)
    if not text or match is None:
        raise ValueError(
            f"invalid duration {text!r}: use a Prometheus duration such as 30s, 5m, 1h30m or 1d"
        )
    millis = sum(
        int(value) * factor
        for value, factor in zip(match.groups(), _UNITS.values(), strict=True)
        if value
    )
    return timedelta(milliseconds=millis)


def format_duration(value: timedelta) -> str:
    """Render a timedelta back into the shortest Prometheus duration string."""
    millis = value // timedelta(milliseconds=1)  # exact; float seconds would round
    if millis == 0:
        return "0s"
    parts = []
    for unit, factor in _UNITS.items():
        if unit in ("y", "w"):
            continue  # days read better than weeks in incident SLAs
        count, millis = divmod(millis, factor)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _coerce(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, timedelta):
        return value
    raise ValueError("a duration must be a string such as 30s, 5m, 1h or 1d")


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_REGEX, "examples": ["30s", "5m", "1h"]}),
]
"""A YAML duration field: accepts Prometheus strings, serializes back to them."""
