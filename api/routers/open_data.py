"""Open-data feeds: no token, public sites only, licensed, cacheable."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.deps import SessionDep, SettingsDep
from api.responses import OpenCounts, OpenSites
from api.routers.errors import error_responses
from api.services import open_data, planner
from api.services.scope import PUBLIC, visible_sites
from api.settings import Settings
from contract import Label

router = APIRouter(prefix="/api/v1/open", tags=["open data"])
OPEN_ERRORS = error_responses(404, 422, 503)
CSV = {"text/csv": {"schema": {"type": "string"}}}


def cached(
    request: Request,
    settings: Settings,
    body: str,
    media_type: str,
    last_modified: datetime | None,
) -> Response:
    """Licence headers, a content ETag and Last-Modified; 304 when the client's copy is current."""
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={settings.open_cache_max_age_s}",
        "Link": f'<{settings.open_licence_url}>; rel="license"',
        "X-Licence": settings.open_licence_id,
        "X-Attribution": settings.open_attribution.encode("latin-1", "replace").decode("latin-1"),
        "Access-Control-Allow-Origin": "*",
    }
    if last_modified is not None:
        headers["Last-Modified"] = format_datetime(last_modified, usegmt=True)
    given = request.headers.get("if-none-match", "")
    if etag in [tag.strip().removeprefix("W/") for tag in given.split(",")] or given.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def as_json(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def latest(stamps: list[datetime | None]) -> datetime | None:
    return max((s for s in stamps if s is not None), default=None)


def published_sites(session: SessionDep, settings: Settings) -> tuple[OpenSites, datetime | None]:
    sites = visible_sites(session, PUBLIC)
    briefs = planner.site_briefs(session, sites)
    return open_data.open_sites(settings, briefs), latest([b.last_report_at for b in briefs])


@router.get(
    "/catalog.json",
    operation_id="get_open_catalog",
    summary="DCAT catalogue of the open datasets",
    responses={200: {"content": {"application/ld+json": {}}}, **OPEN_ERRORS},
)
def get_catalog(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """JSON-LD (DCAT): one dataset per public site."""
    sites = visible_sites(session, PUBLIC)
    body = as_json(open_data.catalog(settings, str(request.base_url), sites))
    stamp = latest([c.last_report_at for s in sites for c in s.cameras])
    return cached(request, settings, body, "application/ld+json", stamp)


@router.get(
    "/sites.geojson",
    operation_id="get_open_sites_geojson",
    summary="Public sites as GeoJSON points with latest totals",
    responses={200: {"content": {"application/geo+json": {}}}, **OPEN_ERRORS},
)
def get_sites_geojson(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """A FeatureCollection; coordinates are [lon, lat]."""
    sites, stamp = published_sites(session, settings)
    body = as_json(open_data.sites_geojson(settings, sites))
    return cached(request, settings, body, "application/geo+json", stamp)


@router.get(
    "/sites.json",
    operation_id="get_open_sites_json",
    summary="Public sites with latest totals (JSON)",
    response_model=OpenSites,
    responses=OPEN_ERRORS,
)
def get_sites_json(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The same sites as the GeoJSON feed, as plain JSON."""
    sites, stamp = published_sites(session, settings)
    return cached(
        request, settings, sites.model_dump_json(by_alias=True), "application/json", stamp
    )


@router.get(
    "/sites.csv",
    operation_id="get_open_sites_csv",
    summary="Public sites with latest totals (CSV)",
    responses={200: {"content": CSV}, **OPEN_ERRORS},
)
def get_sites_csv(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """One row per public site."""
    sites, stamp = published_sites(session, settings)
    return cached(request, settings, open_data.sites_csv(sites), "text/csv", stamp)


GranularityQ = Annotated[open_data.Granularity, Query(description="Bucket size")]
FromQ = Annotated[datetime | None, Query(alias="from", description="Start (ISO 8601, UTC)")]
ToQ = Annotated[datetime | None, Query(alias="to", description="End, exclusive; default now")]


def counts_of(
    session: SessionDep,
    settings: Settings,
    site_id: str,
    granularity: open_data.Granularity,
    start: datetime | None,
    end: datetime | None,
) -> tuple[OpenCounts, datetime | None]:
    (site,) = visible_sites(session, PUBLIC, site_id)
    counts = open_data.site_counts(session, settings, site, granularity, start, end)
    return counts, latest([c.last_report_at for c in site.cameras])


@router.get(
    "/sites/{site_id}/counts.json",
    operation_id="get_open_counts_json",
    summary="Counts of a public site (JSON)",
    response_model=OpenCounts,
    responses=OPEN_ERRORS,
)
def get_counts_json(
    request: Request,
    site_id: Label,
    session: SessionDep,
    settings: SettingsDep,
    granularity: GranularityQ = "1h",
    start: FromQ = None,
    end: ToQ = None,
) -> Response:
    """Buckets without data are absent: no data, never zero traffic."""
    counts, stamp = counts_of(session, settings, site_id, granularity, start, end)
    return cached(
        request, settings, counts.model_dump_json(by_alias=True), "application/json", stamp
    )


@router.get(
    "/sites/{site_id}/counts.csv",
    operation_id="get_open_counts_csv",
    summary="Counts of a public site (CSV)",
    responses={200: {"content": CSV}, **OPEN_ERRORS},
)
def get_counts_csv(
    request: Request,
    site_id: Label,
    session: SessionDep,
    settings: SettingsDep,
    granularity: GranularityQ = "1h",
    start: FromQ = None,
    end: ToQ = None,
) -> Response:
    """Buckets without data are absent: no data, never zero traffic."""
    counts, stamp = counts_of(session, settings, site_id, granularity, start, end)
    return cached(request, settings, open_data.counts_csv(counts), "text/csv", stamp)
