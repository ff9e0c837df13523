"""Open-data feeds: no token, public sites only, licensed, cacheable."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep
from api.movement_responses import OpenMovements
from api.params import TimeRange, TimeRangeDep
from api.read_limits import ReadSlotDep
from api.responses import OpenCounts, OpenSites
from api.routers.errors import error_responses
from api.services import open_data
from api.services.scope import PUBLIC, visible_sites
from api.settings import Settings
from contract import Label

router = APIRouter(prefix="/api/v1/open", tags=["open data"])
OPEN_ERRORS = error_responses(404, 422, 503)
CSV = {"text/csv": {"schema": {"type": "string"}}}


def feed_headers(settings: Settings, etag: str, last_modified: datetime | None) -> dict[str, str]:
    """Licence and caching headers every feed carries."""
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
    return headers


def current(request: Request, etag: str) -> bool:
    """Whether the client's If-None-Match names `etag` (weak comparison, as for a GET)."""
    given = request.headers.get("if-none-match", "")
    tags = {tag.strip().removeprefix("W/") for tag in given.split(",")}
    return etag.removeprefix("W/") in tags or given.strip() == "*"


def cached(
    request: Request,
    settings: Settings,
    body: str,
    media_type: str,
    last_modified: datetime | None,
) -> Response:
    """A small body with a content ETag; 304 when the client's copy is current."""
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    headers = feed_headers(settings, etag, last_modified)
    if current(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def as_json(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def latest(stamps: list[datetime | None]) -> datetime | None:
    return max((s for s in stamps if s is not None), default=None)


def published_sites(session: Session, settings: Settings) -> tuple[OpenSites, datetime | None]:
    sites = visible_sites(session, PUBLIC)
    published = open_data.open_sites(session, settings, sites)
    return published, latest([s.last_report_at for s in published.sites])


@router.get(
    "/catalog.json",
    operation_id="get_open_catalog",
    summary="DCAT catalogue of the open datasets",
    responses={200: {"content": {"application/ld+json": {}}}, **OPEN_ERRORS},
)
def get_catalog(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """JSON-LD (DCAT): one dataset per public site, with its movement feeds when it has any."""
    sites = visible_sites(session, PUBLIC)
    movements = open_data.movement_sites(session, sites)
    body = as_json(open_data.catalog(settings, str(request.base_url), sites, movements))
    stamp = latest([c.last_report_at for s in sites for c in s.cameras])
    return cached(request, settings, body, "application/ld+json", stamp)


@router.get(
    "/sites.geojson",
    operation_id="get_open_sites_geojson",
    summary="Public sites as GeoJSON points with latest totals",
    responses={200: {"content": {"application/geo+json": {}}}, **OPEN_ERRORS},
)
def get_sites_geojson(
    request: Request, session: SessionDep, settings: SettingsDep, _slot: ReadSlotDep
) -> Response:
    """A FeatureCollection; coordinates are [lon, lat]."""
    sites, stamp = published_sites(session, settings)
    body = as_json(open_data.sites_geojson(sites))
    return cached(request, settings, body, "application/geo+json", stamp)


@router.get(
    "/sites.json",
    operation_id="get_open_sites_json",
    summary="Public sites with latest totals (JSON)",
    response_model=OpenSites,
    responses=OPEN_ERRORS,
)
def get_sites_json(
    request: Request, session: SessionDep, settings: SettingsDep, _slot: ReadSlotDep
) -> Response:
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
def get_sites_csv(
    request: Request, session: SessionDep, settings: SettingsDep, _slot: ReadSlotDep
) -> Response:
    """One row per public site."""
    sites, stamp = published_sites(session, settings)
    return cached(request, settings, open_data.sites_csv(sites), "text/csv", stamp)


GranularityQ = Annotated[open_data.Granularity, Query(description="Bucket size")]


FEED_WRITERS: dict[
    tuple[open_data.FeedSource, str],
    tuple[Callable[[open_data.CountFeed], Iterator[str]], str],
] = {
    (open_data.LINES, "json"): (open_data.counts_json, "application/json"),
    (open_data.LINES, "csv"): (open_data.counts_csv, "text/csv"),
    (open_data.MOVEMENTS, "json"): (open_data.movements_json, "application/json"),
    (open_data.MOVEMENTS, "csv"): (open_data.movements_csv, "text/csv"),
}


@dataclass(frozen=True, slots=True)
class FeedQuery:
    """A request for a count or movement feed of one public site."""

    request: Request
    session: Session
    settings: Settings
    site_id: str
    span: TimeRange
    granularity: open_data.Granularity

    def stream(self, fmt: str, source: open_data.FeedSource = open_data.LINES) -> Response:
        """304 when current, 422 when over the row bound (both before any row is built),
        else the body streamed a chunk at a time under a weak ETag."""
        session, settings = self.session, self.settings
        (site,) = visible_sites(session, PUBLIC, self.site_id)
        now = datetime.now(UTC)
        feed = open_data.plan_counts(
            session, settings, site, self.granularity, self.span, now, source
        )
        etag = feed.etag(fmt if source is open_data.LINES else f"movements.{fmt}")
        headers = feed_headers(settings, etag, latest([c.last_report_at for c in site.cameras]))
        if current(self.request, etag):
            return Response(status_code=304, headers=headers)
        feed.check_rows(settings.open_max_rows)
        write, media_type = FEED_WRITERS[(source, fmt)]
        return StreamingResponse(write(feed), media_type=media_type, headers=headers)


def feed_query(
    request: Request,
    site_id: Label,
    session: SessionDep,
    settings: SettingsDep,
    _slot: ReadSlotDep,
    span: TimeRangeDep,
    granularity: GranularityQ = "1h",
) -> FeedQuery:
    return FeedQuery(request, session, settings, site_id, span, granularity)


FeedDep = Annotated[FeedQuery, Depends(feed_query)]


@router.get(
    "/sites/{site_id}/counts.json",
    operation_id="get_open_counts_json",
    summary="Counts of a public site (JSON)",
    response_model=OpenCounts,
    responses=OPEN_ERRORS,
)
def get_counts_json(feed: FeedDep) -> Response:
    """Buckets without data are absent: no data, never zero traffic."""
    return feed.stream("json")


@router.get(
    "/sites/{site_id}/counts.csv",
    operation_id="get_open_counts_csv",
    summary="Counts of a public site (CSV)",
    responses={200: {"content": CSV}, **OPEN_ERRORS},
)
def get_counts_csv(feed: FeedDep) -> Response:
    """Buckets without data are absent: no data, never zero traffic."""
    return feed.stream("csv")


@router.get(
    "/sites/{site_id}/movements.json",
    operation_id="get_open_movements_json",
    summary="Turning movements of a public site (JSON)",
    response_model=OpenMovements,
    responses=OPEN_ERRORS,
)
def get_movements_json(feed: FeedDep) -> Response:
    """Small counts withheld as in counts.json; buckets without data are absent."""
    return feed.stream("json", open_data.MOVEMENTS)


@router.get(
    "/sites/{site_id}/movements.csv",
    operation_id="get_open_movements_csv",
    summary="Turning movements of a public site (CSV)",
    responses={200: {"content": CSV}, **OPEN_ERRORS},
)
def get_movements_csv(feed: FeedDep) -> Response:
    """Small counts withheld as in counts.csv; buckets without data are absent."""
    return feed.stream("csv", open_data.MOVEMENTS)
