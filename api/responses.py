"""Response bodies of the planner, open-data and register endpoints (shapes: docs/api-planner.md,
docs/register.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import CameraStatus
from api.services.grid import BucketName
from api.services.signs import Language
from contract import ConfigPull, LevelOfService, VehicleClass
from contract.camera import Calibration, CameraSetup
from contract.planning import PcuFactors


class Ranged(BaseModel):
    """A response over a time range; `from` is a Python keyword, so the field is `from_`."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from", title="Start of the first bucket")
    to: datetime = Field(title="End of the last bucket")


class Licence(BaseModel):
    """The open-data licence."""

    id: str = Field(title="SPDX licence id")
    url: str = Field(title="Licence text")


class LicenceWithAttribution(Licence):
    """Licence plus the attribution users must give."""

    attribution: str = Field(title="Attribution statement")


class Totals(BaseModel):
    """A total with the share of the period it covers (count null when nothing was watched)."""

    count: int | None = Field(ge=0, title="Vehicles, all lines, directions and classes")
    coverage: float = Field(ge=0, le=1, title="Share of the period watched")
    suppressed: bool = Field(
        default=False,
        title="Open data: small counts were withheld, count sums only the published ones",
    )


class CameraBrief(BaseModel):
    """A camera in a site listing."""

    id: str
    name: str
    status: CameraStatus
    last_seen_at: datetime | None


class SiteBrief(BaseModel):
    """A site in the listing."""

    id: str
    name: str
    road: str
    lat: float
    lon: float
    timezone: str
    description: str
    public: bool
    listed: bool = Field(title="Shown in the public camera register")
    last_report_at: datetime | None = Field(title="When the latest report was received")
    totals_24h: Totals
    cameras: list[CameraBrief]


class SiteList(BaseModel):
    """Every site the caller may see."""

    sites: list[SiteBrief]


class DirectionOut(BaseModel):
    """A geometric crossing direction and the label reports use for it."""

    geometric: str
    label: str


class LineOut(BaseModel):
    """A count line."""

    name: str
    directions: list[DirectionOut]


class ZoneOut(BaseModel):
    """A congestion zone."""

    name: str
    lanes: int
    length_m: float | None


class CameraDetail(CameraBrief):
    """A camera with its configuration."""

    interval_seconds: int
    config_version: int
    reported_config_version: int | None
    lines: list[LineOut]
    zones: list[ZoneOut]


class SiteDetail(SiteBrief):
    """A site with its cameras' lines and zones and its open-data links."""

    cameras: list[CameraDetail]  # type: ignore[assignment]
    open_data: dict[str, str] | None = Field(title="Open-data feed URLs (public sites only)")


class MapTiles(BaseModel):
    """The map's base layer, a server setting (empty tile_url: a plain background)."""

    tile_url: str = Field(max_length=500, title="Tile URL template ({z}/{x}/{y})")
    attribution: str = Field(max_length=500, title="Attribution shown on the map")


class Meta(BaseModel):
    """Constants the dashboard needs (no data: anyone may read them)."""

    version: str
    vehicle_classes: list[VehicleClass]
    heavy_vehicle_classes: list[VehicleClass]
    buckets: dict[BucketName, int] = Field(title="Bucket sizes: name -> seconds")
    max_buckets: int = Field(ge=1, title="Most buckets one series request may span")
    interval_choices: list[int] = Field(title="Report interval lengths a camera may use, seconds")
    licence: LicenceWithAttribution
    open_data: dict[str, str]
    map: MapTiles


class BucketOut(BaseModel):
    """One time bucket, aligned to the response's timezone."""

    start: datetime
    end: datetime


class CoveredBucket(BucketOut):
    """A bucket with the share of it the cameras in scope watched."""

    coverage: float = Field(ge=0, le=1)


class SeriesOut(BaseModel):
    """One count series: fields not grouped on are null; counts null where coverage is 0."""

    camera: str | None
    line: str | None
    direction: str | None
    vehicle_class: str | None
    counts: list[int | None]
    total: int
    coverage: list[float] | None = Field(
        title="Coverage of this series' own cameras per bucket; null when the same as the "
        "buckets' (every camera in scope)"
    )


class CountSeriesOut(Ranged):
    """Count series over clock-aligned buckets."""

    bucket: BucketName
    timezone: str
    group_by: list[str]
    buckets: list[CoveredBucket]
    series: list[SeriesOut]
    total: int | None


class PeakHour(BaseModel):
    """The busiest hour (four consecutive 15-minute buckets) and its peak-hour factor."""

    start: datetime
    end: datetime
    volume: int
    max_15min_volume: int
    phf: float | None = Field(title="volume / (4 x max_15min_volume); null when no traffic")


class SummaryOut(Ranged):
    """Totals, class mix, heavy-vehicle share and peak hour of a period."""

    timezone: str
    total: int | None
    coverage: float
    by_class: dict[str, int | None]
    class_share: dict[str, float | None]
    heavy_vehicles: int | None
    heavy_share: float | None
    pcu_total: float | None = Field(title="Total in passenger-car units (each camera's factors)")
    pcu_by_class: dict[str, float | None] = Field(title="Passenger-car units per class")
    pcu_factors: dict[str, PcuFactors] = Field(title="PCU factors used, per camera")
    peak_hour: PeakHour | None


class HourOfWeekOut(Ranged):
    """Mean hourly volume per weekday (rows, Monday first) and local hour (columns)."""

    timezone: str
    days: list[str]
    mean: list[list[float | None]]
    samples: list[list[int]]


class ZoneSeriesOut(BaseModel):
    """Congestion of one zone per bucket (null where no report covers the bucket)."""

    camera: str
    zone: str
    coverage: list[float]
    mean_vehicles: list[float | None]
    max_vehicles: list[int | None]
    occupancy_time: list[float | None]
    occupancy_area: list[float | None]
    speed_histogram: list[list[int] | None] = Field(
        title="Vehicles per speed bin (speed_bin_edges_kmh), summed over the bucket's reports"
    )
    speed_vehicles: list[int | None] = Field(title="Vehicles with a measured speed")
    mean_speed_kmh: list[float | None] = Field(title="Mean speed over the bucket's vehicles")
    p85_speed_kmh: list[float | None] = Field(
        title="v85 of the bucket's vehicles, from the merged histogram"
    )
    stopped_share: list[float | None]
    queue_vehicles: list[float | None]
    queue_m: list[float | None] = Field(title="Mean queue length in metres (calibrated only)")
    density_veh_km_lane: list[float | None]
    density_pcu_km_lane: list[float | None] = Field(title="Density, PCU per km and lane")
    los: list[LevelOfService | None]


class ZoneSeriesList(Ranged):
    """Zone congestion series over clock-aligned buckets."""

    bucket: BucketName
    timezone: str
    speed_bin_edges_kmh: list[int] = Field(
        title="Lower edges of the speed bins, km/h; the last bin is open-ended"
    )
    buckets: list[BucketOut]
    series: list[ZoneSeriesOut]


class StreamOut(BaseModel):
    """A stream's state at the last heartbeat."""

    camera_id: str
    state: str
    reconnects: int
    fps: float


class HeartbeatOut(BaseModel):
    """The latest heartbeat."""

    received_at: datetime
    sent_at: datetime
    uptime_s: float
    outbox_backlog: int
    dropped_reports: int
    streams: list[StreamOut]


class DayCoverage(BaseModel):
    """Share of a local day a camera watched."""

    date: date
    coverage: float = Field(ge=0, le=1)
    reports: int


class SoftwareOut(BaseModel):
    """What the worker said it runs, at its latest heartbeat."""

    version: str | None = Field(title="Package version (null: not reported)")
    code_sha256: str | None = Field(title="SHA-256 of the installed worker code")
    model_sha256: str | None = Field(title="SHA-256 of the model weights")
    approved: bool | None = Field(
        title="Both digests are on the operator's approved list (null: nothing reported)"
    )
    reported_at: datetime | None = Field(title="When the heartbeat that said so was received")


class DeviceHealthOut(BaseModel):
    """A camera's device health."""

    camera: str
    site: str
    status: CameraStatus
    last_seen_at: datetime | None
    config_version: int
    reported_config_version: int | None
    last_heartbeat: HeartbeatOut | None
    dead_lettered_reports: int = Field(
        ge=0, title="Reports the API refused (4xx) that the worker set aside, at the last heartbeat"
    )
    suspect_frozen: bool = Field(
        title="Fully watched but no vehicles for far longer than this camera's history makes "
        "plausible (frozen picture, covered lens)"
    )
    suspect_reason: str | None = Field(max_length=300, title="Why it is suspect")
    software: SoftwareOut = Field(title="What the worker runs; `approved` false flags it")
    coverage_by_day: list[DayCoverage]


class ConfigVersionOut(BaseModel):
    """One stored version of a camera's set-up: who saved it, when and why."""

    version: int = Field(title="Configuration version")
    created_at: datetime = Field(title="Saved at")
    created_by: str = Field(title="Account e-mail, token:<id> for an admin token, or cli")
    note: str = Field(title="Why, as the editor wrote it")


class CameraConfigOut(ConfigVersionOut):
    """A stored version of a camera's set-up, with what its worker last said."""

    camera_id: str = Field(title="Camera")
    setup: CameraSetup = Field(title="Lines, zones, calibration, interval and classes")
    reported_version: int | None = Field(
        title="Version the worker counts with, at its last heartbeat (null: never heard)"
    )
    config_pull: ConfigPull | None = Field(
        title="The worker's last pull: the version, applied or refused and why (null: none)"
    )


class CalibrationFit(BaseModel):
    """A fitted calibration, ready to save with the set-up, and how well its points agree."""

    calibration: Calibration = Field(title="Image points with ground points in metres")
    reprojection_error_m: float = Field(
        ge=0,
        title="Root-mean-square distance between the ground points and where the fit puts "
        "their image points (0 for exactly four points)",
    )


class DeviceHealthList(BaseModel):
    """Device health of every camera in scope."""

    cameras: list[DeviceHealthOut]


class OpenCountRow(BaseModel):
    """One published count."""

    camera: str
    line: str
    direction: str
    vehicle_class: str
    interval_start: datetime
    interval_end: datetime
    count: int | None = Field(
        ge=0,
        title="15 min: null when withheld (small count); 1 h: the sum of the published "
        "15-minute counts (null when none)",
    )
    coverage: float = Field(ge=0, le=1)
    suppressed: bool = Field(title="Small counts were withheld from this row")


class OpenCounts(Ranged):
    """Published counts of one site."""

    licence: Licence
    attribution: str
    site: str
    granularity: Literal["15min", "1h"]
    rows: list[OpenCountRow]


class OpenSites(BaseModel):
    """Published sites."""

    licence: Licence
    attribution: str
    sites: list[SiteBrief]


# --- the public camera register ------------------------------------------------------------

ROUND_MASKED_BYTES = 100
"""Byte figures of a camera whose numbers are masked are rounded to this many bytes."""


class MeasuredLine(BaseModel):
    """A count line by name, with the direction labels it counts (no geometry)."""

    name: str = Field(title="Line name")
    directions: list[str] = Field(title="Direction labels counted")


class Measures(BaseModel):
    """What the camera measures."""

    lines: list[MeasuredLine] = Field(title="Count lines")
    zones: list[str] = Field(title="Congestion zones")
    vehicle_classes: list[str] = Field(title="Vehicle classes told apart")


class RegisterEntry(BaseModel):
    """One listed camera."""

    camera_id: str = Field(title="Camera id")
    camera_name: str = Field(title="Camera name")
    site_id: str = Field(title="Site id")
    site_name: str = Field(title="Site name")
    road: str = Field(title="Road")
    lat: float = Field(title="Latitude (WGS 84)")
    lon: float = Field(title="Longitude (WGS 84)")
    operator: str = Field(title="Who runs the camera")
    contact: str = Field(title="Where to send questions or objections")
    purpose: str = Field(title="Why it counts, in plain words")
    legal_basis: str = Field(title="Legal basis")
    retention: str = Field(title="How long data are kept")
    measures: Measures = Field(title="What it measures")
    counts_published: bool = Field(title="Its counts are open data")
    open_data: dict[str, str] | None = Field(title="Open-data feeds of its site (when published)")
    in_service_since: datetime = Field(title="When the camera was registered")
    status: CameraStatus = Field(title="online, offline or never (seen)")
    last_report_at: datetime | None = Field(title="When its latest report was received")
    bytes_sent_24h: int = Field(ge=0, title="Request bytes received from it in the last 24 h")
    bytes_rounded: bool = Field(title=f"Byte figures rounded to {ROUND_MASKED_BYTES} bytes")
    software_approved: bool | None = Field(
        title="Its code and model digests are on the operator's approved list (null: unknown)"
    )
    page_url: str = Field(title="The camera's public page")
    sign_url: str = Field(title="The printable sign (SVG)")


class RegisterList(BaseModel):
    """Every listed camera."""

    language: Language = Field(title="Language of the shipped texts")
    cameras: list[RegisterEntry] = Field(title="Listed cameras, by site and camera id")


class BytesOut(BaseModel):
    """Bytes the API received from the camera: measured here, not reported by the camera."""

    last_24h: int = Field(ge=0, title="All request bytes, last 24 h")
    reports_24h: int = Field(ge=0, title="Bytes of report batches, last 24 h")
    heartbeats_24h: int = Field(ge=0, title="Bytes of heartbeats, last 24 h")
    report_requests_24h: int = Field(ge=0, title="Report batches received, last 24 h")
    heartbeat_requests_24h: int = Field(ge=0, title="Heartbeats received, last 24 h")
    reports_stored_24h: int = Field(ge=0, title="Reports stored, last 24 h")
    per_report: int | None = Field(
        title="Mean bytes per stored report, last 24 h (each report's share of its batch)"
    )
    latest_report: int | None = Field(title="Bytes of the latest report")
    rounded: bool = Field(title=f"Rounded to {ROUND_MASKED_BYTES} bytes (numbers are masked)")


class VideoComparison(BaseModel):
    """What one day of the camera's video would weigh: an estimate, for comparison."""

    width: int = Field(title="Frame width, pixels (as the worker reports its stream)")
    height: int = Field(title="Frame height, pixels")
    fps: float = Field(title="Frame rate of the stream")
    bits_per_pixel: float = Field(title="Assumed H.264 bits per pixel and frame")
    bitrate_bps: int = Field(title="The bitrate that assumes, bits per second")
    day_bytes: int = Field(title="Estimated bytes of one day of this video")
    basis: str = Field(title="How the estimate is made")


class WireField(BaseModel):
    """One field of the interval report, in plain words."""

    field: str = Field(title="Field path (a[] is each element of list a)")
    kind: str = Field(title="What kind of value it holds")
    meaning: str = Field(title="What it means")


class LatestReport(BaseModel):
    """The camera's latest interval report, as received (masked where numbers are private)."""

    received_at: datetime = Field(title="When the API received it")
    masked: bool = Field(title="Every number replaced by …")
    masked_because: str | None = Field(title="Why the numbers are hidden")
    body: dict[str, Any] = Field(title="The report as received")


class CameraPage(RegisterEntry):
    """Everything the public page of one camera shows."""

    latest_report: LatestReport | None = Field(title="Latest report (null: none yet)")
    software: SoftwareOut = Field(title="The worker's software")
    validation: None = Field(
        default=None, title="Latest validation against a manual tally (null: none recorded)"
    )
    bytes: BytesOut = Field(title="Bytes received from the camera")
    video: VideoComparison | None = Field(title="A day of its video (null: size not reported)")
    wire_schema: list[WireField] = Field(title="Every field a report can hold")
    wire_schema_url: str = Field(title="The JSON Schema of a report batch")
