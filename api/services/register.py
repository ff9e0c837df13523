"""The public camera register: who measures what, where and why, and exactly what each camera
sends, for anyone to check without an account.

Public by design, so built from an allow-list of fields: site and camera names, place, the
names of lines and zones (no geometry), the operator's texts, status and times, the bytes this
API measured, the worker's software digests, and the latest report. Never a token or token id,
a network address, a stream URL, an account or an e-mail other than the operator's contact.
The latest report of a private site has every number replaced by ``…`` (its shape stays
visible, its data does not); so has a public site's while the open data withholds small
counts (a stream of per-minute reports would give the withheld counts back). Wherever numbers
are masked, byte figures are rounded (the length of a number says something about it).
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from api.models import Camera, CameraTraffic, DeviceHealth, IntervalReportRecord, Site
from api.responses import (
    ROUND_MASKED_BYTES,
    BytesOut,
    CameraPage,
    LatestReport,
    MeasuredLine,
    Measures,
    RegisterEntry,
    RegisterList,
    SoftwareOut,
    VideoComparison,
    WireField,
)
from api.services.disclosure import effective_threshold
from api.services.errors import NotFoundError
from api.services.grid import utc_now
from api.services.scope import camera_status
from api.services.signs import Language, SignFacts, sign_svg
from api.services.sites import DAY_HOURS, HOUR_S, hour_end, open_links
from api.settings import Settings
from contract import VEHICLE_CLASSES, IntervalReport, ZoneRow

MASK = "…"
BITS_PER_PIXEL = 0.1
"""Assumed H.264 bitrate per pixel and frame for "a day of this video": 0.1 gives about
5.2 Mbit/s for 1080p at 25 fps and 190 kbit/s for 320x240 at 25 fps, typical of CCTV."""
DAY_S = 86_400
PAGE_PATH = "/register.html"


class RegisterTexts(BaseModel):
    """The operator's texts, or the shipped ones in the register's language."""

    operator: str
    contact: str
    purpose: str
    legal_basis: str
    retention: str


SHIPPED: dict[Language, RegisterTexts] = {
    "en": RegisterTexts(
        operator="",
        contact="not stated by the operator",
        purpose=(
            "Counting vehicles by type and direction, and measuring congestion, for traffic"
            " planning. The camera keeps and sends no images."
        ),
        legal_basis="not stated by the operator",
        retention="Counts are kept as numbers per interval; images are never stored anywhere.",
    ),
    "nl": RegisterTexts(
        operator="",
        contact="niet opgegeven door de beheerder",
        purpose=(
            "Voertuigen tellen per soort en rijrichting en de drukte meten, voor"
            " verkeersplanning. De camera bewaart en verstuurt geen beelden."
        ),
        legal_basis="niet opgegeven door de beheerder",
        retention="Tellingen worden als getallen per interval bewaard; beelden nergens.",
    ),
}


def register_texts(settings: Settings) -> RegisterTexts:
    """Each text as the operator configured it, else the shipped one."""
    shipped = SHIPPED[settings.register_language]
    return RegisterTexts(
        operator=settings.register_operator or settings.open_publisher,
        contact=settings.register_contact or shipped.contact,
        purpose=settings.register_purpose or shipped.purpose,
        legal_basis=settings.register_legal_basis or shipped.legal_basis,
        retention=settings.register_retention or shipped.retention,
    )


# --- building them -------------------------------------------------------------------------


def listed_cameras(session: Session) -> list[tuple[Site, Camera]]:
    """Cameras of listed sites, by site and camera id (with their lines and zones)."""
    cameras = selectinload(Site.cameras)
    sites = session.scalars(
        select(Site)
        .where(Site.listed.is_(True))
        .order_by(Site.id)
        .options(cameras.selectinload(Camera.lines), cameras.selectinload(Camera.zones))
    )
    return [(site, camera) for site in sites for camera in site.cameras]


def listed_camera(session: Session, camera_id: str) -> tuple[Site, Camera]:
    """A camera of a listed site, or a 404 that says no more than that."""
    camera = session.get(Camera, camera_id)
    if camera is None or not camera.site.listed:
        raise NotFoundError(f"camera {camera_id!r} is not in the register")
    return camera.site, camera


def masking_reason(site: Site, settings: Settings) -> str | None:
    """Why this site's report numbers are hidden, or None when they are shown."""
    if not site.public:
        return "the operator does not publish this site's counts"
    if effective_threshold(settings.open_min_count):
        return "the open data withholds small counts, which per-interval reports would reveal"
    return None


def shown_bytes(value: int, rounded: bool) -> int:
    return round(value / ROUND_MASKED_BYTES) * ROUND_MASKED_BYTES if rounded else value


class Traffic(NamedTuple):
    """Request bodies the API received from a camera and stored."""

    report_bytes: int = 0
    report_requests: int = 0
    heartbeat_bytes: int = 0
    heartbeat_requests: int = 0

    @property
    def total(self) -> int:
        return self.report_bytes + self.heartbeat_bytes


def traffic_24h(session: Session, camera_ids: Sequence[str], now: datetime) -> dict[str, Traffic]:
    """Each camera's traffic over the 24 hourly buckets up to the end of the current hour."""
    end = hour_end(now)
    rows = session.execute(
        select(
            CameraTraffic.camera_id,
            func.sum(CameraTraffic.report_bytes),
            func.sum(CameraTraffic.report_requests),
            func.sum(CameraTraffic.heartbeat_bytes),
            func.sum(CameraTraffic.heartbeat_requests),
        )
        .where(
            CameraTraffic.camera_id.in_(camera_ids),
            CameraTraffic.hour_start_s >= end - DAY_HOURS * HOUR_S,
            CameraTraffic.hour_start_s < end,
        )
        .group_by(CameraTraffic.camera_id)
    ).all()
    return {row[0]: Traffic(*(int(value) for value in row[1:])) for row in rows}


def approval(health: DeviceHealth | None, settings: Settings) -> bool | None:
    """Both digests approved; None when the worker reported no software."""
    if health is None or health.code_sha256 is None:
        return None
    approved = set(settings.approved_software)
    return health.code_sha256 in approved and health.model_sha256 in approved


def software_of(health: DeviceHealth | None, settings: Settings) -> SoftwareOut:
    """What the camera's worker said it runs, and whether the operator approved it."""
    return SoftwareOut(
        version=health.software_version if health else None,
        code_sha256=health.code_sha256 if health else None,
        model_sha256=health.model_sha256 if health else None,
        approved=approval(health, settings),
        reported_at=health.received_at if health and health.software_version else None,
    )


def page_url(base_url: str, camera_id: str) -> str:
    return f"{base_url}{PAGE_PATH}?camera={camera_id}"


def entry(
    site: Site,
    camera: Camera,
    *,
    texts: RegisterTexts,
    settings: Settings,
    base_url: str,
    bytes_24h: int,
    health: DeviceHealth | None,
    now: datetime,
) -> RegisterEntry:
    rounded = masking_reason(site, settings) is not None
    return RegisterEntry(
        camera_id=camera.id,
        camera_name=camera.name,
        site_id=site.id,
        site_name=site.name,
        road=site.road,
        lat=site.lat,
        lon=site.lon,
        **texts.model_dump(),
        measures=Measures(
            lines=[
                MeasuredLine(name=line.name, directions=sorted(set(line.directions.values())))
                for line in camera.lines
            ],
            zones=[zone.name for zone in camera.zones],
            vehicle_classes=list(VEHICLE_CLASSES),
        ),
        counts_published=site.public,
        open_data=open_links(site),
        in_service_since=camera.created_at,
        status=camera_status(camera, now),
        last_report_at=camera.last_report_at,
        bytes_sent_24h=shown_bytes(bytes_24h, rounded),
        bytes_rounded=rounded,
        software_approved=approval(health, settings),
        page_url=page_url(base_url, camera.id),
        sign_url=f"{base_url}/api/v1/open/register/cameras/{camera.id}/sign.svg",
    )


def register_list(session: Session, settings: Settings, base_url: str) -> RegisterList:
    """Every camera of a listed site."""
    now = utc_now()
    cameras = listed_cameras(session)
    ids = [camera.id for _, camera in cameras]
    traffic = traffic_24h(session, ids, now)
    beats = session.scalars(select(DeviceHealth).where(DeviceHealth.camera_id.in_(ids)))
    health = {beat.camera_id: beat for beat in beats}
    texts = register_texts(settings)
    return RegisterList(
        language=settings.register_language,
        cameras=[
            entry(
                site,
                camera,
                texts=texts,
                settings=settings,
                base_url=base_url,
                bytes_24h=traffic.get(camera.id, Traffic()).total,
                health=health.get(camera.id),
                now=now,
            )
            for site, camera in cameras
        ],
    )


def register_geojson(listing: RegisterList) -> dict[str, Any]:
    """The listing as GeoJSON points ([lon, lat]); the other fields are properties."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": camera.camera_id,
                "geometry": {"type": "Point", "coordinates": [camera.lon, camera.lat]},
                "properties": camera.model_dump(mode="json", exclude={"lat", "lon"}),
            }
            for camera in listing.cameras
        ],
    }


SHOWN_WHEN_MASKED = frozenset(
    {"schema_version", "report_id", "camera_id", "interval_start", "interval_seconds"}
)
"""What a masked report still shows: which interval it is, never what was in it."""


def masked(value: Any) -> Any:
    """`value` with every leaf (number, flag, text, null) replaced by the mask."""
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return MASK


def masked_report(payload: dict[str, Any], camera: Camera) -> dict[str, Any]:
    """The report's shape with nothing of its content: count rows for every registered line,
    direction and class and a row for every zone, whichever the worker sent (it sends only
    non-zero counts, so the rows present would tell where traffic was)."""
    body = {
        key: value if key in SHOWN_WHEN_MASKED else masked(value) for key, value in payload.items()
    }
    body["counts"] = [
        {"line": line.name, "direction": direction, "vehicle_class": vehicle_class, "count": MASK}
        for line in camera.lines
        for direction in sorted(set(line.directions.values()))
        for vehicle_class in VEHICLE_CLASSES
    ]
    body["zones"] = [
        {field: zone.name if field == "zone" else MASK for field in ZoneRow.model_fields}
        for zone in camera.zones
    ]
    return body


def latest_report(
    session: Session, camera: Camera, reason: str | None
) -> tuple[LatestReport | None, int | None]:
    """The newest interval of the camera, as received (masked when `reason`), and its bytes."""
    record = session.scalars(
        select(IntervalReportRecord)
        .where(IntervalReportRecord.camera_id == camera.id)
        .order_by(IntervalReportRecord.interval_start_s.desc())
        .limit(1)
    ).first()
    if record is None:
        return None, None
    report = LatestReport(
        received_at=record.received_at,
        masked=reason is not None,
        masked_because=reason,
        body=masked_report(record.payload, camera) if reason else record.payload,
    )
    return report, record.wire_bytes


def reports_stored_24h(session: Session, camera: Camera, now: datetime) -> tuple[int, int]:
    """Reports received in the last 24 hourly buckets, and the bytes they were given."""
    since = datetime.fromtimestamp(hour_end(now) - DAY_HOURS * HOUR_S, now.tzinfo)
    count, total = session.execute(
        select(func.count(), func.sum(IntervalReportRecord.wire_bytes)).where(
            IntervalReportRecord.camera_id == camera.id,
            IntervalReportRecord.received_at >= since,
            IntervalReportRecord.wire_bytes.is_not(None),
        )
    ).one()
    return int(count), int(total or 0)


def video_comparison(health: DeviceHealth | None, camera_id: str) -> VideoComparison | None:
    """The day-of-video estimate from the stream size the worker reported, if it did."""
    stream = next(
        (s for s in (health.streams if health else []) if s.get("camera_id") == camera_id), None
    )
    if not stream or not (stream.get("frame_width") and stream.get("source_fps")):
        return None
    width, height, fps = stream["frame_width"], stream["frame_height"], stream["source_fps"]
    bitrate = round(width * height * fps * BITS_PER_PIXEL)
    return VideoComparison(
        width=width,
        height=height,
        fps=fps,
        bits_per_pixel=BITS_PER_PIXEL,
        bitrate_bps=bitrate,
        day_bytes=bitrate * DAY_S // 8,
        basis=(
            f"an estimate: H.264 at {BITS_PER_PIXEL} bits per pixel and frame, a typical rate"
            f" for CCTV, is {bitrate / 1000:.0f} kbit/s at {width}x{height} and {fps:g} fps"
        ),
    )


def unwrap(annotation: Any) -> tuple[Any, bool, bool]:
    """(inner type, is a list, may be null) of a field annotation."""
    optional = False
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(members) < len(get_args(annotation))
        annotation = members[0]
        origin = get_origin(annotation)
    if origin is list:
        return get_args(annotation)[0], True, optional
    return annotation, False, optional


def kind_of(inner: Any) -> str:
    if get_origin(inner) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(inner))
    names = {bool: "true or false", int: "whole number", float: "number", datetime: "UTC time"}
    return names.get(inner, "text (a short configured name or an id)")


def wire_fields(model: type[BaseModel], prefix: str = "") -> Iterator[WireField]:
    """Every field of `model` in plain words, from the contract's own titles (so it cannot
    drift from what workers send)."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        inner, many, optional = unwrap(info.annotation)
        nested = isinstance(inner, type) and issubclass(inner, BaseModel)
        kind = ("list of objects" if nested else f"list of {kind_of(inner)}") if many else None
        kind = kind or ("object" if nested else kind_of(inner))
        yield WireField(
            field=path, kind=kind + (", or null" if optional else ""), meaning=info.title or ""
        )
        if nested:
            yield from wire_fields(inner, f"{path}[]." if many else f"{path}.")


WIRE_SCHEMA = list(wire_fields(IntervalReport))


def camera_page(session: Session, settings: Settings, base_url: str, camera_id: str) -> CameraPage:
    """The public page of one listed camera."""
    now = utc_now()
    site, camera = listed_camera(session, camera_id)
    health = session.get(DeviceHealth, camera.id)
    reason = masking_reason(site, settings)
    rounded = reason is not None
    traffic = traffic_24h(session, [camera.id], now).get(camera.id, Traffic())
    latest, latest_bytes = latest_report(session, camera, reason)
    stored, stored_bytes = reports_stored_24h(session, camera, now)
    base = entry(
        site,
        camera,
        texts=register_texts(settings),
        settings=settings,
        base_url=base_url,
        bytes_24h=traffic.total,
        health=health,
        now=now,
    )
    return CameraPage(
        **base.model_dump(),
        latest_report=latest,
        software=software_of(health, settings),
        bytes=BytesOut(
            last_24h=shown_bytes(traffic.total, rounded),
            reports_24h=shown_bytes(traffic.report_bytes, rounded),
            heartbeats_24h=shown_bytes(traffic.heartbeat_bytes, rounded),
            report_requests_24h=traffic.report_requests,
            heartbeat_requests_24h=traffic.heartbeat_requests,
            reports_stored_24h=stored,
            per_report=shown_bytes(round(stored_bytes / stored), rounded) if stored else None,
            latest_report=shown_bytes(latest_bytes, rounded) if latest_bytes is not None else None,
            rounded=rounded,
        ),
        video=video_comparison(health, camera.id),
        wire_schema=WIRE_SCHEMA,
        wire_schema_url="/api/v1/open/register/wire-schema.json",
    )


def camera_sign(session: Session, settings: Settings, base_url: str, camera_id: str) -> str:
    """The printable sign of one listed camera."""
    site, camera = listed_camera(session, camera_id)
    texts = register_texts(settings)
    facts = SignFacts(
        camera_id=camera.id,
        place=", ".join(part for part in (site.name, site.road) if part),
        operator=texts.operator,
        contact=texts.contact,
        page_url=page_url(base_url, camera.id),
    )
    return sign_svg(facts, settings.register_language)
