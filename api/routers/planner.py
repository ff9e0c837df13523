"""Planner queries: sites, count series and summaries, zones, device health."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AudienceDep, SessionDep, SettingsDep
from api.params import (
    CameraQ,
    ClassQ,
    CountQueryDep,
    GroupByQ,
    SiteQ,
    TimeRangeDep,
    TzQ,
)
from api.read_limits import ReadSlotDep
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
from api.services import device_health, meta, sites, summaries, zones
from api.services.counts import GroupField, count_series
from api.services.grid import BucketName, make_grid
from api.services.scope import resolve_scope, visible_sites
from contract import Label

router = APIRouter(prefix="/api/v1", tags=["planner"])
QUERY_ERRORS = error_responses(401, 404, 422, 503)
MAX_SPAN = timedelta(days=366)


@router.get(
    "/meta", operation_id="get_meta", summary="Constants and open-data links", response_model=Meta
)
def get_meta(settings: SettingsDep) -> Meta:
    """Vehicle classes, bucket sizes and their limit, licence, feed URLs and map tiles; no
    sign-in needed (constants only, no data)."""
    return meta.meta(settings)


@router.get(
    "/sites",
    operation_id="list_sites",
    summary="Sites with camera status and 24-hour totals",
    response_model=SiteList,
    responses=error_responses(401, 503),
)
def list_sites(session: SessionDep, audience: AudienceDep, _slot: ReadSlotDep) -> SiteList:
    """Every site the caller may see."""
    return SiteList(sites=sites.site_briefs(session, visible_sites(session, audience)))


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
    return sites.site_detail(session, site)


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
    _slot: ReadSlotDep,
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
    return summaries.series_out(count_series(session, grid, where, groups), groups)


@router.get(
    "/counts/summary",
    operation_id="get_count_summary",
    summary="Totals, class mix, heavy-vehicle share, peak hour and PHF",
    response_model=SummaryOut,
    response_model_by_alias=True,
    responses=QUERY_ERRORS,
)
def get_count_summary(
    session: SessionDep, audience: AudienceDep, _slot: ReadSlotDep, query: CountQueryDep
) -> SummaryOut:
    """At most 366 days."""
    scope, where, first, last = query.resolve(session, audience, timedelta(days=1), MAX_SPAN)
    return summaries.summary(session, scope, where, first, last)


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
    _slot: ReadSlotDep,
    query: CountQueryDep,
    vehicle_class: ClassQ = None,
) -> HourOfWeekOut:
    """At most 366 days."""
    scope, where, first, last = query.resolve(
        session, audience, timedelta(days=28), MAX_SPAN, vehicle_class
    )
    return summaries.hour_of_week(session, scope, where, first, last)


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
    _slot: ReadSlotDep,
    span: TimeRangeDep,
    site: SiteQ = None,
    camera: CameraQ = None,
    zone: Annotated[Label | None, Query(description="Zone name")] = None,
    bucket: Annotated[BucketName, Query(description="Bucket size")] = "15min",
    tz: TzQ = None,
) -> ZoneSeriesList:
    """Values are null where no report covers the bucket."""
    scope = resolve_scope(session, audience, site, camera, None, tz)
    first, last = span.resolve(scope.tz, timedelta(days=1))
    return zones.zone_series(session, scope, zone, make_grid(bucket, scope.tz, first, last))


@router.get(
    "/devices/health",
    operation_id="get_device_health",
    summary="Device health and coverage per day",
    response_model=DeviceHealthList,
    responses=QUERY_ERRORS,
)
def get_device_health(
    session: SessionDep,
    settings: SettingsDep,
    audience: AudienceDep,
    _slot: ReadSlotDep,
    site: SiteQ = None,
    days: Annotated[int, Query(ge=1, le=366, description="Local days of coverage")] = 14,
) -> DeviceHealthList:
    """Last heartbeat, status, daily coverage, dead-lettered reports and frozen-camera
    suspicion of each camera."""
    sites_in_scope = visible_sites(session, audience, site)
    return device_health.device_health(session, settings, sites_in_scope, days)
