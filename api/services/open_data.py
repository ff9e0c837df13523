"""Open-data feeds: public sites only, licensed, small counts withheld so they stay withheld.

Count feeds are planned before they are built: the rows a request would return are counted
from a few aggregate queries, a request over `open_max_rows` is refused (422), and the body
is then generated a chunk of buckets at a time, so memory stays flat however long the range.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.models import CameraRollup, LineRollup, MovementCoverageRollup, MovementRollup, Site
from api.params import TimeRange
from api.responses import LicenceWithAttribution, OpenCountRow, OpenCounts, OpenSites, Totals
from api.services.disclosure import Published, effective_threshold, finest, summed
from api.services.errors import DomainError
from api.services.grid import Grid, make_grid
from api.services.movements import camera_view
from api.services.rollups import CLASS_COLUMNS, rollup_window
from api.services.sites import DAY_HOURS, HOUR_S, hour_start, site_briefs, totals_24h
from api.settings import Settings
from contract import VEHICLE_CLASSES, Movement

UTC_ZONE = ZoneInfo("UTC")
Granularity = Literal["15min", "1h"]
GRANULARITY_S: dict[Granularity, int] = {"15min": 900, "1h": HOUR_S}
QUARTER_S = GRANULARITY_S["15min"]
MAX_SPAN: dict[Granularity, timedelta] = {"15min": timedelta(days=31), "1h": timedelta(days=366)}
DEFAULT_SPAN = timedelta(days=7)
CHUNK_ROWS = 2000
"""Rows built, and held, at a time while a count feed streams."""
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
    "suppressed_24h",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection)."""
Key = tuple[str, str, str]
"""line, direction, vehicle class (a movement feed: origin, destination, vehicle class)."""
MOVEMENT_COLUMNS = (
    "site",
    "camera",
    "origin",
    "destination",
    "movement",
    "vehicle_class",
    *COUNT_COLUMNS[-5:],
)


@dataclass(frozen=True, slots=True)
class FeedSource:
    """The rollup a count feed reads, its two key columns and the rollup of what was watched:
    the line feed or, keyed by origin and destination gate, the turning-movement feed, watched
    only by reports that counted movements (one suppression rule for both)."""

    model: Any
    keys: tuple[str, str]
    coverage: Any

    def columns(self) -> list[Any]:
        return [getattr(self.model, k) for k in self.keys]


LINES = FeedSource(LineRollup, ("line", "direction"), CameraRollup)
MOVEMENTS = FeedSource(MovementRollup, ("origin", "destination"), MovementCoverageRollup)


class FeedRow(NamedTuple):
    """One published count, its fields in the order of `OpenCountRow` (the documented shape),
    times already as text: plain tuples keep a long feed cheap (a model per row cost 20 us)."""

    camera: str
    line: str
    direction: str
    vehicle_class: str
    interval_start: str
    interval_end: str
    vehicles: int | None
    coverage: float
    suppressed: bool


ROW_FIELDS = tuple(OpenCountRow.model_fields)


def stamp(moment_s: int) -> str:
    """A UTC bucket boundary as the JSON of a datetime reads (2026-03-02T08:00:00Z)."""
    return datetime.fromtimestamp(moment_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RowLimitError(DomainError):
    """A count request that would return more rows than one response may hold (422)."""


def licence(settings: Settings) -> LicenceWithAttribution:
    """The open-data licence as configured (the feeds publish its id and url, the attribution
    beside it)."""
    return LicenceWithAttribution(
        id=settings.open_licence_id,
        url=settings.open_licence_url,
        attribution=settings.open_attribution,
    )


# --- CSV -----------------------------------------------------------------------------------


def spreadsheet_safe(value: object) -> object:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP);
    numbers pass as they are (a negative longitude is not a formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV with every field quoted, so a line break inside a field stays inside it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerows([spreadsheet_safe(v) for v in row] for row in rows)
    return buffer.getvalue()


def csv_bool(value: bool) -> str:
    return "true" if value else "false"


def blank_if_none(value: object) -> object:
    return "" if value is None else value


# --- sites ---------------------------------------------------------------------------------


def open_totals(
    session: Session, settings: Settings, sites: Sequence[Site], now: datetime
) -> dict[str, Totals]:
    """Each site's total over its last 24 complete hours. With suppression on it is the sum of
    the 1-hour rows the count feed publishes for those hours (a withheld count stays out)."""
    end = hour_start(now)
    totals = totals_24h(session, sites, end)
    if not effective_threshold(settings.open_min_count):
        return totals
    span = TimeRange(
        datetime.fromtimestamp(end - DAY_HOURS * HOUR_S, UTC), datetime.fromtimestamp(end, UTC)
    )
    for site in sites:
        if totals[site.id].count is None:
            continue
        feed = plan_counts(session, settings, site, "1h", span, now)
        published = summed(
            Published(row.vehicles, row.suppressed) for chunk in feed.chunks() for row in chunk
        )
        totals[site.id] = totals[site.id].model_copy(
            update={"count": published.count, "suppressed": published.suppressed}
        )
    return totals


def open_sites(session: Session, settings: Settings, sites: Sequence[Site]) -> OpenSites:
    """Public sites with their published totals."""
    totals = open_totals(session, settings, sites, datetime.now(UTC))
    return OpenSites(
        licence=licence(settings),
        attribution=settings.open_attribution,
        sites=site_briefs(session, sites, totals),
    )


def sites_geojson(sites: OpenSites) -> dict[str, Any]:
    """Sites as GeoJSON points ([lon, lat])."""
    return {
        "type": "FeatureCollection",
        "licence": sites.model_dump(mode="json", include={"licence"})["licence"],
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
    return csv_text(
        [
            SITE_COLUMNS,
            *(
                (
                    s.id,
                    s.name,
                    s.road,
                    s.lat,
                    s.lon,
                    s.timezone,
                    s.last_report_at.isoformat() if s.last_report_at else "",
                    blank_if_none(s.totals_24h.count),
                    round(s.totals_24h.coverage, 4),
                    csv_bool(s.totals_24h.suppressed),
                )
                for s in sites.sites
            ),
        ]
    )


# --- counts --------------------------------------------------------------------------------

Watched = dict[tuple[str, int], tuple[float, int]]
"""(camera, bucket start) -> (seconds watched, reports) of one rollup granularity."""


@dataclass
class CountFeed:
    """A planned count feed: which rows it holds, before any of them is built.

    With suppression on, each camera-hour is published at its finest: as 15-minute cells
    when its 15-minute buckets hold the whole hour (the same reports), otherwise (30- or
    60-minute intervals, or an hour whose interval changed) at 1 hour only. The 1-hour row of
    a 15-minute hour is the sum of its published quarters. Only buckets that have ended are
    published then: a bucket still filling would show its growth between two downloads.
    """

    session: Session
    settings: Settings
    site: Site
    granularity: Granularity
    grid: Grid
    threshold: int
    cutoff_s: int | None
    keys: dict[str, list[Key]]
    quarters: Watched
    hours: Watched
    source: FeedSource = LINES
    buckets: dict[str, list[int]] = field(default_factory=dict)

    @property
    def size_s(self) -> int:
        return GRANULARITY_S[self.granularity]

    @property
    def rows(self) -> int:
        """How many rows the feed holds."""
        return sum(len(self.keys.get(c, ())) * len(b) for c, b in self.buckets.items())

    def check_rows(self, limit: int) -> None:
        """Refuse (422) a feed over `limit` rows, saying how much of a range would fit."""
        if self.rows <= limit:
            return
        days = max((self.grid.end - self.grid.start) / 86400, 1 / 24)
        fits = max(int(limit / (self.rows / days)), 0)
        raise RowLimitError(
            f"this request would return {self.rows} rows, more than the limit of {limit};"
            f" shorten the range (about {fits} days fit at {self.granularity})"
            + ("" if self.granularity == "1h" else " or use granularity=1h")
        )

    def resolved(self, camera: str, hour: int) -> bool:
        """Whether the hour's 15-minute buckets hold all of its reports."""
        reports = self.hours.get((camera, hour), (0.0, 0))[1]
        quarters = (
            self.quarters.get((camera, hour + n * QUARTER_S), (0.0, 0))[1] for n in range(4)
        )
        return reports > 0 and sum(quarters) == reports

    def publishes(self, camera: str, start: int) -> bool:
        """Whether the bucket at `start` is published for `camera`."""
        if self.cutoff_s is not None and start + self.size_s > self.cutoff_s:
            return False
        if self.granularity == "1h":
            return self.hours.get((camera, start), (0.0, 0))[0] > 0
        hour = start - start % HOUR_S
        watched = self.quarters.get((camera, start), (0.0, 0))[0] > 0
        return watched and (not self.threshold or self.resolved(camera, hour))

    def header(self) -> OpenCounts:
        """The response without its rows."""
        return OpenCounts(
            licence=licence(self.settings),
            attribution=self.settings.open_attribution,
            site=self.site.id,
            granularity=self.granularity,
            from_=datetime.fromtimestamp(self.grid.start, UTC),
            to=datetime.fromtimestamp(self.grid.end, UTC),
            rows=[],
        )

    def etag(self, fmt: str) -> str:
        """A weak validator from what the body depends on: the query as resolved, the cameras'
        latest reports and the publishing settings (the body itself is never held whole)."""
        cutoff = None if self.cutoff_s is None else self.cutoff_s // self.size_s
        parts = [
            fmt,
            self.site.id,
            self.granularity,
            self.grid.start,
            self.grid.end,
            cutoff,
            self.threshold,
            self.settings.open_licence_id,
            self.settings.open_licence_url,
            self.settings.open_attribution,
            *(f"{c.id}@{c.last_report_at}" for c in self.site.cameras),
        ]
        digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]
        return f'W/"{digest}"'

    def chunks(self) -> Iterator[list[FeedRow]]:
        """The rows in order (bucket, camera, line, direction, class), a few buckets at a time."""
        per_bucket = max(sum(len(k) for k in self.keys.values()), 1)
        step = max(CHUNK_ROWS // per_bucket, 1)
        for first in range(0, len(self.grid), step):
            starts = self.grid.starts[first : first + step]
            yield self.build(starts[0], starts[-1] + self.size_s, starts)

    def build(self, start: int, end: int, starts: Sequence[int]) -> list[FeedRow]:
        """The rows of the buckets `starts` (all in [start, end))."""
        cameras = sorted(c for c in self.keys if any(self.publishes(c, b) for b in starts))
        if not cameras:
            return []
        values = line_counts(self.session, cameras, self.size_s, start, end, self.source)
        quarters: dict[tuple[str, int, str, str], list[dict[str, int]]] = defaultdict(list)
        if self.granularity == "1h" and self.threshold:
            for (camera, bucket, line, direction), row in line_counts(
                self.session, cameras, QUARTER_S, start, end, self.source
            ).items():
                quarters[(camera, bucket - bucket % HOUR_S, line, direction)].append(row)
        rows = []
        for bucket in starts:
            interval_start, interval_end = stamp(bucket), stamp(bucket + self.size_s)
            for camera in cameras:
                if not self.publishes(camera, bucket):
                    continue
                watched = (self.hours if self.granularity == "1h" else self.quarters)[
                    (camera, bucket)
                ][0]
                coverage = round(min(watched / self.size_s, 1.0), 4)
                fine = self.granularity == "15min" or not (
                    self.threshold and self.resolved(camera, bucket)
                )
                for line, direction, vehicle_class in self.keys[camera]:
                    where = (camera, bucket, line, direction)
                    if fine:
                        value = finest(values.get(where, {}).get(vehicle_class, 0), self.threshold)
                    else:
                        value = summed(
                            finest(q[vehicle_class], self.threshold)
                            for q in quarters.get(where, ())
                        )
                    rows.append(
                        FeedRow(
                            camera,
                            line,
                            direction,
                            vehicle_class,
                            interval_start,
                            interval_end,
                            value.count,
                            coverage,
                            value.suppressed,
                        )
                    )
        return rows


def plan_counts(
    session: Session,
    settings: Settings,
    site: Site,
    granularity: Granularity,
    span: TimeRange,
    now: datetime,
    source: FeedSource = LINES,
) -> CountFeed:
    """The feed of `site` over `span` (UTC buckets), from three cheap queries: the keys with
    traffic in the range, and what each camera watched per 15 minutes and per hour."""
    first, last = span.resolve(UTC_ZONE, DEFAULT_SPAN, MAX_SPAN[granularity])
    grid = make_grid(granularity, UTC_ZONE, first, last, None)
    threshold = effective_threshold(settings.open_min_count)
    cameras = [c.id for c in site.cameras]
    # whole hours: suppression tells 15-minute hours from 1-hour ones by comparing both
    hour_start, hour_end = grid.start - grid.start % HOUR_S, -(-grid.end // HOUR_S) * HOUR_S
    feed = CountFeed(
        session=session,
        settings=settings,
        site=site,
        granularity=granularity,
        grid=grid,
        threshold=threshold,
        cutoff_s=int(now.timestamp()) if threshold else None,
        keys=counted_keys(session, cameras, hour_start, hour_end, source),
        quarters=watched(session, cameras, QUARTER_S, hour_start, hour_end, source)
        if granularity == "15min" or threshold
        else {},
        hours=watched(session, cameras, HOUR_S, hour_start, hour_end, source)
        if granularity == "1h" or threshold
        else {},
        source=source,
    )
    feed.buckets = {
        camera: [b for b in grid.starts if feed.publishes(camera, b)] for camera in feed.keys
    }
    return feed


def counted_keys(
    session: Session, cameras: Sequence[str], start: int, end: int, source: FeedSource = LINES
) -> dict[str, list[Key]]:
    """Per camera, the (line, direction, class) keys with traffic in the hours [start, end): a
    key has rows (zeros included) once it counted anything, as a series does. Hours, also for
    15-minute rows: an hourly total holds every report, so whether a key has rows depends on
    no count that is withheld or left unpublished (a 15-minute count of an hour published at
    1 hour only)."""
    model = source.model
    columns = [func.sum(getattr(model, CLASS_COLUMNS[c])) for c in VEHICLE_CLASSES]
    statement = (
        select(model.camera_id, *source.columns(), *columns)
        .where(*rollup_window(model, HOUR_S, cameras, start, end))
        .group_by(model.camera_id, *source.columns())
    )
    keys: dict[str, list[Key]] = defaultdict(list)
    for camera, line, direction, *totals in session.execute(statement):
        keys[camera] += [
            (line, direction, c) for c, n in zip(VEHICLE_CLASSES, totals, strict=True) if n
        ]
    return {camera: sorted(found) for camera, found in keys.items()}


def watched(
    session: Session,
    cameras: Sequence[str],
    granularity: int,
    start: int,
    end: int,
    source: FeedSource = LINES,
) -> Watched:
    """Seconds watched and reports per camera and bucket of one rollup granularity."""
    model = source.coverage
    statement = select(model.camera_id, model.bucket_start_s, model.covered_s, model.reports).where(
        *rollup_window(model, granularity, cameras, start, end)
    )
    return {
        (camera, int(bucket)): (float(covered or 0), int(reports or 0))
        for camera, bucket, covered, reports in session.execute(statement)
    }


def line_counts(
    session: Session,
    cameras: Sequence[str],
    granularity: int,
    start: int,
    end: int,
    source: FeedSource = LINES,
) -> dict[tuple[str, int, str, str], dict[str, int]]:
    """Per-class counts per (camera, bucket, line, direction) of one rollup granularity (a
    movement feed: origin and destination for line and direction)."""
    model = source.model
    columns = [getattr(model, CLASS_COLUMNS[c]) for c in VEHICLE_CLASSES]
    statement = select(model.camera_id, model.bucket_start_s, *source.columns(), *columns).where(
        *rollup_window(model, granularity, cameras, start, end)
    )
    return {
        (camera, int(bucket), line, direction): dict(zip(VEHICLE_CLASSES, counts, strict=True))
        for camera, bucket, line, direction, *counts in session.execute(statement)
    }


def counts_json(feed: CountFeed) -> Iterator[str]:
    """The feed as JSON (the OpenCounts shape), produced a chunk of rows at a time."""
    return feed_json(feed, lambda row: dict(zip(ROW_FIELDS, row, strict=True)))


def feed_json(feed: CountFeed, shaped: Callable[[FeedRow], dict[str, Any]]) -> Iterator[str]:
    """The feed's header with its rows, each `shaped`, streamed a chunk at a time."""
    head = feed.header().model_dump_json(by_alias=True, exclude={"rows"})
    yield head[:-1] + ',"rows":['
    separator = ""
    for chunk in feed.chunks():
        if chunk:
            rows = [shaped(row) for row in chunk]
            yield separator + json.dumps(rows, separators=(",", ":"))[1:-1]
            separator = ","
    yield "]}"


def movement_namer(feed: CountFeed) -> Callable[[str, str, str], Movement | None]:
    """camera, origin, destination -> the movement's name from the camera's newest layout."""
    views = {c.id: camera_view(feed.session, c.id) for c in feed.site.cameras}
    return lambda camera, origin, destination: views[camera].movement(origin, destination)


def movements_json(feed: CountFeed) -> Iterator[str]:
    """A movement feed as JSON (the OpenMovements shape)."""
    named = movement_namer(feed)

    def shaped(row: FeedRow) -> dict[str, Any]:
        return {
            "camera": row.camera,
            "origin": row.line,
            "destination": row.direction,
            "movement": named(row.camera, row.line, row.direction),
        } | dict(zip(ROW_FIELDS[3:], row[3:], strict=True))

    return feed_json(feed, shaped)


def movements_csv(feed: CountFeed) -> Iterator[str]:
    """A movement feed as CSV (licence and attribution in the response headers)."""
    named = movement_namer(feed)
    yield csv_text([MOVEMENT_COLUMNS])
    for chunk in feed.chunks():
        yield csv_text(
            (
                feed.site.id,
                *row[:3],
                named(*row[:3]) or "",
                *row[3:6],
                blank_if_none(row.vehicles),
                row.coverage,
                csv_bool(row.suppressed),
            )
            for row in chunk
        )


def counts_csv(feed: CountFeed) -> Iterator[str]:
    """The feed as CSV (licence and attribution travel in the response headers)."""
    yield csv_text([COUNT_COLUMNS])
    for chunk in feed.chunks():
        yield csv_text(
            (
                feed.site.id,
                *row[:6],
                blank_if_none(row.vehicles),
                row.coverage,
                csv_bool(row.suppressed),
            )
            for row in chunk
        )


def movement_sites(session: Session, sites: Sequence[Site]) -> set[str]:
    """The sites of `sites` with a camera that ever watched movements."""
    cameras = {c.id: site.id for site in sites for c in site.cameras}
    statement = (
        select(MovementCoverageRollup.camera_id)
        .where(MovementCoverageRollup.camera_id.in_(sorted(cameras)))
        .distinct()
    )
    return {cameras[camera] for camera in session.scalars(statement)}


def catalog(
    settings: Settings, base_url: str, sites: Sequence[Site], movements: set[str]
) -> dict[str, Any]:
    """A DCAT catalogue (JSON-LD): one dataset per public site, a distribution per feed, the
    turning-movement feeds for the sites in `movements` (those with movement data)."""
    base = base_url.rstrip("/")

    def distribution(site: Site, feed: str, granularity: Granularity, fmt: str) -> dict[str, Any]:
        url = f"{base}/api/v1/open/sites/{site.id}/{feed}.{fmt}?granularity={granularity}"
        title = "counts" if feed == "counts" else "turning movements"
        return {
            "@type": "dcat:Distribution",
            "dct:title": f"{site.name}: {granularity} {title} ({fmt.upper()})",
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
        "dct:description": "Vehicle counts by line, direction and class from Tally cameras, "
        "and turning movements (origin and destination gate) where a camera counts them. "
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
                    distribution(site, feed, granularity, fmt)
                    for feed in ("counts", "movements")
                    if feed == "counts" or site.id in movements
                    for granularity in ("15min", "1h")
                    for fmt in ("csv", "json")
                ],
            }
            for site in sites
        ],
    }
