"""Open-data feeds: public sites only, licensed, small counts optionally suppressed."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from api.models import Site
from api.responses import Licence, OpenCountRow, OpenCounts, OpenSites, SiteBrief, Totals
from api.services.counts import CountFilter, count_series
from api.services.grid import make_grid, resolve_range
from api.settings import Settings

Granularity = Literal["15min", "1h"]
MAX_SPAN: dict[Granularity, timedelta] = {"15min": timedelta(days=31), "1h": timedelta(days=366)}
DEFAULT_SPAN = timedelta(days=7)
COUNT_COLUMNS = (
    "site",
    "camera",
    "line",
    "direction",
    "vehicle_class",
    "interval_start",
    "interval_end",
    "count",
    "coverage",
    "suppressed",
)
SITE_COLUMNS = (
    "id",
    "name",
    "road",
    "lat",
    "lon",
    "timezone",
    "last_report_at",
    "count_24h",
    "coverage_24h",
)


def suppress(count: int | None, threshold: int) -> tuple[int | None, bool]:
    """Counts from 1 to threshold-1 are withheld (zero reveals no one)."""
    if count is not None and 0 < count < threshold:
        return None, True
    return count, False


def licence_of(settings: Settings) -> Licence:
    return Licence(id=settings.open_licence_id, url=settings.open_licence_url)


def open_sites(settings: Settings, briefs: Sequence[SiteBrief]) -> OpenSites:
    """Public sites with suppressed totals."""
    published = []
    for brief in briefs:
        count, _ = suppress(brief.totals_24h.count, settings.open_min_count)
        published.append(
            brief.model_copy(
                update={"totals_24h": Totals(count=count, coverage=brief.totals_24h.coverage)}
            )
        )
    return OpenSites(
        licence=licence_of(settings), attribution=settings.open_attribution, sites=published
    )


def sites_geojson(settings: Settings, sites: OpenSites) -> dict[str, Any]:
    """Sites as GeoJSON points ([lon, lat])."""
    return {
        "type": "FeatureCollection",
        "licence": sites.licence.model_dump(),
        "attribution": sites.attribution,
        "features": [
            {
                "type": "Feature",
                "id": site.id,
                "geometry": {"type": "Point", "coordinates": [site.lon, site.lat]},
                "properties": site.model_dump(
                    mode="json", exclude={"lat", "lon", "public", "cameras"}
                )
                | {"counts_csv": f"/api/v1/open/sites/{site.id}/counts.csv"},
            }
            for site in sites.sites
        ],
    }


def sites_csv(sites: OpenSites) -> str:
    """One row per public site."""
    rows = [
        {
            "id": s.id,
            "name": s.name,
            "road": s.road,
            "lat": s.lat,
            "lon": s.lon,
            "timezone": s.timezone,
            "last_report_at": s.last_report_at.isoformat() if s.last_report_at else "",
            "count_24h": "" if s.totals_24h.count is None else s.totals_24h.count,
            "coverage_24h": round(s.totals_24h.coverage, 4),
        }
        for s in sites.sites
    ]
    return to_csv(SITE_COLUMNS, rows)


def site_counts(
    session: Session,
    settings: Settings,
    site: Site,
    granularity: Granularity,
    start: datetime | None,
    end: datetime | None,
) -> OpenCounts:
    """Rows per (bucket, camera, line, direction, class) for buckets that have data (UTC)."""
    first, last = resolve_range(ZoneInfo("UTC"), start, end, DEFAULT_SPAN, MAX_SPAN[granularity])
    grid = make_grid(granularity, ZoneInfo("UTC"), first, last, None)
    rows = []
    for camera in site.cameras:
        result = count_series(
            session,
            grid,
            CountFilter((camera.id,)),
            ("line", "direction", "vehicle_class"),
        )
        for i, coverage in enumerate(result.coverage):
            if coverage == 0:
                continue
            for series in result.series:
                count, suppressed = suppress(series.counts[i], settings.open_min_count)
                rows.append(
                    OpenCountRow(
                        camera=camera.id,
                        line=str(series.key["line"]),
                        direction=str(series.key["direction"]),
                        vehicle_class=str(series.key["vehicle_class"]),
                        interval_start=datetime.fromtimestamp(grid.starts[i], UTC),
                        interval_end=datetime.fromtimestamp(grid.ends[i], UTC),
                        count=count,
                        coverage=round(coverage, 4),
                        suppressed=suppressed,
                    )
                )
    rows.sort(key=lambda r: (r.interval_start, r.camera, r.line, r.direction, r.vehicle_class))
    return OpenCounts(
        licence=licence_of(settings),
        attribution=settings.open_attribution,
        site=site.id,
        granularity=granularity,
        from_=datetime.fromtimestamp(grid.start, UTC),
        to=datetime.fromtimestamp(grid.end, UTC),
        rows=rows,
    )


def counts_csv(counts: OpenCounts) -> str:
    """The counts as CSV (licence and attribution travel in the response headers)."""
    rows = [
        {"site": counts.site}
        | row.model_dump(mode="json")
        | {
            "count": "" if row.count is None else row.count,
            "suppressed": str(row.suppressed).lower(),
        }
        for row in counts.rows
    ]
    return to_csv(COUNT_COLUMNS, rows)


def to_csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def catalog(settings: Settings, base_url: str, sites: Sequence[Site]) -> dict[str, Any]:
    """A DCAT catalogue (JSON-LD): one dataset per public site, a distribution per feed."""
    base = base_url.rstrip("/")

    def distribution(site: Site, granularity: Granularity, fmt: str) -> dict[str, Any]:
        url = f"{base}/api/v1/open/sites/{site.id}/counts.{fmt}?granularity={granularity}"
        return {
            "@type": "dcat:Distribution",
            "dct:title": f"{site.name}: {granularity} counts ({fmt.upper()})",
            "dcat:accessURL": url,
            "dcat:downloadURL": url,
            "dcat:mediaType": "text/csv" if fmt == "csv" else "application/json",
            "dct:format": fmt.upper(),
            "dct:license": settings.open_licence_url,
        }

    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
        },
        "@type": "dcat:Catalog",
        "@id": f"{base}/api/v1/open/catalog.json",
        "dct:title": "Tally traffic counts",
        "dct:description": "Vehicle counts by line, direction and class from Tally cameras. "
        "Counts and aggregate congestion only; no imagery is kept.",
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": settings.open_publisher},
        "dct:license": settings.open_licence_url,
        "dct:rights": settings.open_attribution,
        "dcat:dataset": [
            {
                "@type": "dcat:Dataset",
                "@id": f"{base}/api/v1/open/sites/{site.id}",
                "dct:identifier": site.id,
                "dct:title": f"Traffic counts: {site.name}",
                "dct:description": site.description
                or f"Traffic counts at {site.name}, {site.road}",
                "dcat:keyword": ["traffic", "vehicle counts", "mobility"],
                "dct:spatial": {
                    "@type": "dct:Location",
                    "dcat:centroid": f"POINT({site.lon} {site.lat})",
                },
                "dct:accrualPeriodicity": "http://purl.org/cld/freq/continuous",
                "dct:license": settings.open_licence_url,
                "dct:rights": settings.open_attribution,
                "dcat:distribution": [
                    distribution(site, granularity, fmt)
                    for granularity in ("15min", "1h")
                    for fmt in ("csv", "json")
                ],
            }
            for site in sites
        ],
    }
