"""Small-count suppression for the open data, one rule that every feed follows.

Withholding a small count is only worth something if nothing else published gives it back:
an hourly row of 7 next to 15-minute rows null/0/5/0 says the hidden one was 2. So counts are
withheld once, at the finest cells any feed publishes, and everything coarser is a sum of the
cells that were published: no subtraction of published numbers, across granularities,
classes, cameras or overlapping 24-hour windows, can reach a withheld cell. The full rule and
its reasons are in docs/api-planner.md ("Small counts").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LEAST_THRESHOLD = 3
"""With a threshold of 2 only 1s would be withheld, and 'withheld' would mean exactly 1; so
any threshold above 1 withholds at least 1 and 2."""


def effective_threshold(min_count: int) -> int:
    """Counts from 1 to this minus 1 are withheld; 0 when suppression is off (0 or 1)."""
    return 0 if min_count <= 1 else max(min_count, LEAST_THRESHOLD)


@dataclass(frozen=True, slots=True)
class Published:
    """A count as published: its value (None when nothing can be shown) and whether small
    counts were withheld from it."""

    count: int | None
    suppressed: bool


def finest(count: int, threshold: int) -> Published:
    """A finest cell: 1..threshold-1 is withheld; zero is shown (it identifies no one, and with
    a threshold of at least 3 'withheld' still leaves two or more values possible)."""
    if 0 < count < threshold:
        return Published(None, True)
    return Published(count, False)


def summed(parts: Iterable[Published]) -> Published:
    """A coarser count made of published parts only: the sum of what was shown, flagged when
    anything was withheld (None when only zeros were shown beside withheld parts)."""
    total, withheld = 0, False
    for part in parts:
        total += part.count or 0
        withheld = withheld or part.suppressed
    return Published(None if withheld and not total else total, withheld)
