"""Time buckets aligned to a timezone's clock, and which stored granularity can fill them."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from api.services.errors import DomainError

BucketName = Literal["1min", "15min", "1h", "1d"]
BUCKET_SECONDS: dict[BucketName, int] = {"1min": 60, "15min": 900, "1h": 3600, "1d": 86400}
MAX_BUCKETS = 10_000


class RangeError(DomainError):
    """A time range that is empty, reversed or too long for the bucket size."""


@dataclass(frozen=True, slots=True)
class Grid:
    """Consecutive buckets [starts[i], ends[i]) in epoch seconds, aligned to `tz`'s clock."""

    bucket: BucketName
    tz: ZoneInfo
    starts: list[int]
    ends: list[int]

    @property
    def start(self) -> int:
        return self.starts[0]

    @property
    def end(self) -> int:
        return self.ends[-1]

    def __len__(self) -> int:
        return len(self.starts)

    def index(self, moment_s: int) -> int | None:
        """The bucket holding `moment_s`, or None outside the grid."""
        i = bisect_right(self.starts, moment_s) - 1
        return i if i >= 0 and moment_s < self.ends[i] else None

    def iso(self, moment_s: int) -> datetime:
        """A bucket boundary as a datetime in the grid's timezone."""
        return datetime.fromtimestamp(moment_s, tz=self.tz)

    def source_granularity(self, choices: tuple[int, ...]) -> int:
        """Coarsest stored granularity whose UTC buckets each lie inside one bucket here."""
        size = min(BUCKET_SECONDS[self.bucket], 3600)
        offsets = {self.iso(t).utcoffset() for t in (self.start, self.end)}
        fitting = [
            g
            for g in choices
            if size % g == 0 and all(o is not None and o.total_seconds() % g == 0 for o in offsets)
        ]
        if not fitting:
            raise RangeError(f"no stored granularity fits {self.bucket} buckets in {self.tz.key}")
        return max(fitting)


def to_aware(moment: datetime, tz: ZoneInfo) -> datetime:
    """A naive time is read in the timezone of the query."""
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def make_grid(
    bucket: BucketName,
    tz: ZoneInfo,
    start: datetime,
    end: datetime,
    max_buckets: int | None = MAX_BUCKETS,
) -> Grid:
    """Buckets covering [start, end): start floored, end raised to bucket boundaries."""
    start, end = to_aware(start, tz), to_aware(end, tz)
    if end <= start:
        raise RangeError("'to' must be after 'from'")
    size = BUCKET_SECONDS[bucket]
    span = (end - start).total_seconds()
    if max_buckets is not None and span / size > max_buckets + 1:
        raise RangeError(f"too many {bucket} buckets (at most {max_buckets}); shorten the range")
    if bucket == "1d":
        first = start.astimezone(tz).date()
        last = (end - timedelta(microseconds=1)).astimezone(tz).date()
        days = [first + timedelta(days=n) for n in range((last - first).days + 2)]
        bounds = [int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()) for d in days]
    else:
        first_s = floor_local(int(start.timestamp()), size, tz)
        end_s = int(end.timestamp())
        count = -(-(end_s - first_s) // size)
        bounds = [first_s + n * size for n in range(count + 1)]
    return Grid(bucket=bucket, tz=tz, starts=bounds[:-1], ends=bounds[1:])


def floor_local(moment_s: int, size: int, tz: ZoneInfo) -> int:
    """Start of the `size`-second bucket of the local clock that holds `moment_s`."""
    offset = datetime.fromtimestamp(moment_s, tz=tz).utcoffset() or timedelta(0)
    local = moment_s + int(offset.total_seconds())
    return moment_s - local % size


def utc_now() -> datetime:
    """The current time (one place, so tests and defaults agree on 'now')."""
    return datetime.now(UTC)


def resolve_range(
    tz: ZoneInfo,
    start: datetime | None,
    end: datetime | None,
    default: timedelta,
    max_span: timedelta | None = None,
) -> tuple[datetime, datetime]:
    """Aware bounds: `end` defaults to now, `start` to `default` before `end`."""
    last = to_aware(end, tz) if end is not None else utc_now()
    first = to_aware(start, tz) if start is not None else last - default
    if max_span is not None and last - first > max_span:
        raise RangeError(f"the range may span at most {max_span.days} days")
    return first, last
