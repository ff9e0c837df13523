"""Query parameters the read routers share: filters, the time range and the count query.

Every endpoint that takes `from`/`to` takes them through `TimeRangeDep` (planner and open data
alike), so every one refuses the same out-of-range dates with the same 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Query
from pydantic import AfterValidator
from sqlalchemy.orm import Session

from api.services.counts import GROUP_FIELDS, CountFilter, GroupField
from api.services.grid import resolve_range
from api.services.scope import Audience, Scope, resolve_scope
from contract import Label, VehicleClass

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""Dates outside [1970, 2100) are refused: traffic data lies well inside, and the bucket
arithmetic near year 1 or 9999 overflows (it was a 500)."""


def bounded_moment(value: datetime) -> datetime:
    """A query time between 1970-01-01 and 2100-01-01 (a naive time compares as if UTC; the
    few hours a timezone moves it cannot reach the overflow)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        raise ValueError(
            f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (got {value.isoformat()})"
        )
    return value


def parse_group_by(value: str) -> list[GroupField]:
    """'line,direction' -> ['line', 'direction'], in canonical order, each known."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(names) - set(GROUP_FIELDS))
    if unknown:
        raise ValueError(f"unknown group_by field(s) {unknown}; use {', '.join(GROUP_FIELDS)}")
    return [f for f in GROUP_FIELDS if f in names]


SiteQ = Annotated[Label | None, Query(description="Site id")]
CameraQ = Annotated[Label | None, Query(description="Camera id")]
LineQ = Annotated[Label | None, Query(description="Count line name")]
DirectionQ = Annotated[Label | None, Query(description="Direction label")]
ClassQ = Annotated[VehicleClass | None, Query(description="One vehicle class")]
BoundedMoment = Annotated[datetime, AfterValidator(bounded_moment)]
FromQ = Annotated[
    BoundedMoment | None,
    Query(alias="from", description="Start (ISO 8601), from 1970-01-01"),
]
ToQ = Annotated[
    BoundedMoment | None,
    Query(alias="to", description="End, exclusive (ISO 8601), before 2100-01-01; default now"),
]
TzQ = Annotated[str | None, Query(max_length=64, description="IANA timezone; default the site's")]
GroupByQ = Annotated[
    str,
    Query(
        max_length=64,
        pattern=r"^[a-z_,]*$",
        description=f"Comma list of {', '.join(GROUP_FIELDS)}",
    ),
    AfterValidator(parse_group_by),
]


@dataclass(frozen=True, slots=True)
class TimeRange:
    """`from` and `to` as given (either may be missing)."""

    start: datetime | None
    end: datetime | None

    def resolve(
        self, tz: ZoneInfo, default_span: timedelta, max_span: timedelta | None = None
    ) -> tuple[datetime, datetime]:
        """Aware bounds: `to` defaults to now, `from` to `default_span` before it."""
        return resolve_range(tz, self.start, self.end, default_span, max_span)


def time_range(start: FromQ = None, end: ToQ = None) -> TimeRange:
    return TimeRange(start, end)


TimeRangeDep = Annotated[TimeRange, Depends(time_range)]


@dataclass(frozen=True, slots=True)
class CountQuery:
    """The query parameters the count endpoints share: where to count, over which range."""

    site: str | None
    camera: str | None
    line: str | None
    direction: str | None
    range: TimeRange
    tz: str | None

    def resolve(
        self,
        session: Session,
        audience: Audience,
        default_span: timedelta,
        max_span: timedelta | None = None,
        vehicle_class: VehicleClass | None = None,
    ) -> tuple[Scope, CountFilter, datetime, datetime]:
        """The visible scope, the count filter on it, and the aware range."""
        scope = resolve_scope(session, audience, self.site, self.camera, self.line, self.tz)
        first, last = self.range.resolve(scope.tz, default_span, max_span)
        where = CountFilter(scope.cameras, self.line, self.direction, vehicle_class)
        return scope, where, first, last


def count_query(
    span: TimeRangeDep,
    site: SiteQ = None,
    camera: CameraQ = None,
    line: LineQ = None,
    direction: DirectionQ = None,
    tz: TzQ = None,
) -> CountQuery:
    return CountQuery(site, camera, line, direction, span, tz)


CountQueryDep = Annotated[CountQuery, Depends(count_query)]
