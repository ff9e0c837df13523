"""Planner queries: sites, count series and summaries, zones, device health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator
from sqlalchemy.orm import Session

from api.deps import AudienceDep, SessionDep, SettingsDep
from api.responses import (
    CountSeriesOut,
    DeviceHealthList,
    HourOfWeekOut,
    Meta,
    SiteDetail,
    SiteList,
    SummaryOut,
    ZoneSeriesList,
)
from api.routers.errors import error_responses
from api.services import planner
from api.services.counts import GROUP_FIELDS, CountFilter, GroupField, count_series
from api.services.grid import BucketName, make_grid, resolve_range
from api.services.scope import Audience, Scope, resolve_scope, visible_sites
from contract import Label, VehicleClass

router = APIRouter(prefix="/api/v1", tags=["planner"])
QUERY_ERRORS = error_responses(404, 422, 503)
MAX_SPAN = timedelta(days=366)


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
FromQ = Annotated[datetime | None, Query(alias="from", description="Start (ISO 8601)")]
ToQ = Annotated[
    datetime | None, Query(alias="to", description="End, exclusive (ISO 8601); default now")
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
class CountQuery:
    """The query parameters the count endpoints share: where to count, over which range."""

    site: str | None
    camera: str | None
    line: str | None
    direction: str | None
    start: datetime | None
    end: datetime | None
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
        first, last = resolve_range(scope.tz, self.start, self.end, default_span, max_span)
        where = CountFilter(scope.cameras, self.line, self.direction, vehicle_class)
        return scope, where, first, last


def count_query(
    site: SiteQ = None,
    camera: CameraQ = None,
    line: LineQ = None,
    direction: DirectionQ = None,
    start: FromQ = None,
    end: ToQ = None,
    tz: TzQ = None,
) -> CountQuery:
    return CountQuery(site, camera, line, direction, start, end, tz)


CountQueryDep = Annotated[CountQuery, Depends(count_query)]


@router.get(
    "/meta", operation_id="get_meta", summary="Constants and open-data links", response_model=Meta
)
def get_meta(settings: SettingsDep) -> Meta:
    """Vehicle classes, bucket sizes, licence and feed URLs."""
    return planner.meta(settings)


@router.get(
    "/sites",
    operation_id="list_sites",
    summary="Sites with camera status and 24-hour totals",
    response_model=SiteList,
    responses=error_responses(503),
)
def list_sites(session: SessionDep, audience: AudienceDep) -> SiteList:
    """Every site the caller may see."""
    return SiteList(sites=planner.site_briefs(session, visible_sites(session, audience)))


@router.get(
    "/sites/{site_id}",
    operation_id="get_site",
    summary="Site metadata: cameras, lines, directions, zones",
    response_model=SiteDetail,
    responses=QUERY_ERRORS,
)
def get_site(site_id: Label, session: SessionDep, audience: AudienceDep) -> SiteDetail:
    """404 for an unknown (or, to this caller, invisible) site."""
    (site,) = visible_sites(session, audience, site_id)
    return planner.site_detail(session, site)


@router.get(
    "/counts/series",
    operation_id="get_count_series",
    summary="Count time series with coverage per bucket",
    response_model=CountSeriesOut,
    response_model_by_alias=True,
    responses=QUERY_ERRORS,
)
def get_count_series(
    session: SessionDep,
    audience: AudienceDep,
    query: CountQueryDep,
    vehicle_class: ClassQ = None,
    bucket: Annotated[BucketName, Query(description="Bucket size")] = "1h",
    group_by: GroupByQ = "",
) -> CountSeriesOut:
    """Buckets with coverage 0 have count null: a gap, not zero traffic."""
    scope, where, first, last = query.resolve(
        session, audience, timedelta(days=7), vehicle_class=vehicle_class
    )
    grid = make_grid(bucket, scope.tz, first, last)
    groups: list[GroupField] = group_by  # type: ignore[assignment]
    return planner.series_out(count_series(session, grid, where, groups), groups)


@router.get(
    "/counts/summary",
    operation_id="get_count_summary",
    summary="Totals, class mix, heavy-vehicle share, peak hour and PHF",
    response_model=SummaryOut,
    response_model_by_alias=True,
    responses=QUERY_ERRORS,
)
def get_count_summary(
    session: SessionDep, audience: AudienceDep, query: CountQueryDep
) -> SummaryOut:
    """At most 366 days."""
    scope, where, first, last = query.resolve(session, audience, timedelta(days=1), MAX_SPAN)
    return planner.summary(session, scope, where, first, last)


@router.get(
    "/counts/hour-of-week",
    operation_id="get_hour_of_week",
    summary="Mean hourly volume per weekday and hour",
    response_model=HourOfWeekOut,
    response_model_by_alias=True,
    responses=QUERY_ERRORS,
)
def get_hour_of_week(
    session: SessionDep,
    audience: AudienceDep,
    query: CountQueryDep,
    vehicle_class: ClassQ = None,
) -> HourOfWeekOut:
    """At most 366 days."""
    scope, where, first, last = query.resolve(
        session, audience, timedelta(days=28), MAX_SPAN, vehicle_class
    )
    return planner.hour_of_week(session, scope, where, first, last)


@router.get(
    "/zones/series",
    operation_id="get_zone_series",
    summary="Zone congestion series: occupancy, speeds, queue, LOS",
    response_model=ZoneSeriesList,
    response_model_by_alias=True,
    responses=QUERY_ERRORS,
)
def get_zone_series(
    session: SessionDep,
    audience: AudienceDep,
    site: SiteQ = None,
    camera: CameraQ = None,
    zone: Annotated[Label | None, Query(description="Zone name")] = None,
    start: FromQ = None,
    end: ToQ = None,
    bucket: Annotated[BucketName, Query(description="Bucket size")] = "15min",
    tz: TzQ = None,
) -> ZoneSeriesList:
    """Values are null where no report covers the bucket."""
    scope = resolve_scope(session, audience, site, camera, None, tz)
    first, last = resolve_range(scope.tz, start, end, timedelta(days=1))
    return planner.zone_series(session, scope, zone, make_grid(bucket, scope.tz, first, last))


@router.get(
    "/devices/health",
    operation_id="get_device_health",
    summary="Device health and coverage per day",
    response_model=DeviceHealthList,
    responses=QUERY_ERRORS,
)
def get_device_health(
    session: SessionDep,
    audience: AudienceDep,
    site: SiteQ = None,
    days: Annotated[int, Query(ge=1, le=366, description="Local days of coverage")] = 14,
) -> DeviceHealthList:
    """Last heartbeat, status and daily coverage of each camera."""
    return planner.device_health(session, visible_sites(session, audience, site), days)
