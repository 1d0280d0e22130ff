"""Percentiles and rates, defined once so the report, the page and the tests agree."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The q-quantile (0 ≤ q ≤ 1) of ascending `ordered`, by linear interpolation between the
    closest ranks (numpy's default, so a spreadsheet's PERCENTILE.INC gives the same);
    None for no values. The median is `percentile(values, 0.5)`."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def rate(part: int, whole: int) -> float | None:
    """part ÷ whole, or None when there is nothing to divide by (not 0: "no data" is not 0%)."""
    return part / whole if whole else None
