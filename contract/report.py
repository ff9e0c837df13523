"""The interval report: the only thing a worker ever sends about traffic.

It is defined once, here, and imported by the worker (to build and send) and by the
API (to validate and store). It holds numbers and configured labels only: no image,
no per-vehicle id, position or trajectory can be expressed in it, and unknown fields
are rejected (``extra="forbid"``) so nothing else can be smuggled in.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

SCHEMA_VERSION: Literal[2] = 2
SchemaVersion = Literal[1, 2]
"""Version 1 reports and heartbeats stay valid; version 2 adds what the commissioning, turning
movement and streams-per-device work send (each field below says which)."""

LABEL_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
Label = Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]
"""Names of cameras, lines, zones and directions: short, lower-case, no path or markup."""

VehicleClass = Literal["bicycle", "car", "motorcycle", "bus", "truck"]
VEHICLE_CLASSES: tuple[VehicleClass, ...] = ("bicycle", "car", "motorcycle", "bus", "truck")
HEAVY_VEHICLE_CLASSES: frozenset[VehicleClass] = frozenset({"bus", "truck"})

LevelOfService = Literal["A", "B", "C", "D", "E", "F"]

GeometricDirection = Literal["down", "up", "right", "left"]
"""Crossing directions in image coordinates; sites rename them (e.g. down -> southbound)."""
GEOMETRIC_DIRECTIONS: tuple[GeometricDirection, ...] = ("down", "up", "right", "left")

SPEED_BIN_EDGES_KMH: tuple[int, ...] = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130)
"""Lower edges of the speed histogram bins; the last bin is open-ended (>= 130 km/h)."""

INTERVAL_CHOICES_S: tuple[int, ...] = (10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)
"""Interval lengths that divide a day evenly, so intervals align to the wall clock."""

MAX_COUNT = 100_000
MAX_CONFIG_VERSION = 1_000_000
MAX_FRAME_SIDE = 16_384
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_SENT_AT = datetime(2100, 1, 1, tzinfo=UTC)
MAX_REPORTS_PER_BATCH = 500
REPORT_ID_NAMESPACE = uuid.UUID("5f0c9a52-4d0b-4c8e-9a43-2f3c1d7e6b10")
REPORT_ID_NAMESPACE_BYTES = REPORT_ID_NAMESPACE.bytes

Share = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegativeCount = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class ContractModel(BaseModel):
    """Strict base: unknown fields are an error, values are never coerced from strings."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CountRow(ContractModel):
    """Vehicles of one class that crossed one line in one direction during the interval."""

    line: Label = Field(title="Count line name")
    direction: Label = Field(title="Direction label of the crossing")
    vehicle_class: VehicleClass = Field(title="Vehicle class")
    count: NonNegativeCount = Field(title="Vehicles counted")


class ZoneRow(ContractModel):
    """Congestion of one zone over the interval, from aggregate frame statistics only."""

    zone: Label = Field(title="Zone name")
    mean_vehicles: float = Field(ge=0, le=1000, title="Mean vehicles present")
    max_vehicles: int = Field(ge=0, le=1000, title="Most vehicles present at once")
    occupancy_time: Share = Field(title="Share of time the zone held a vehicle")
    occupancy_area: Share = Field(title="Mean share of zone area covered by vehicles")
    mean_speed_kmh: float | None = Field(
        ge=0, le=300, title="Mean speed (calibrated only); v2: over vehicles, not frames"
    )
    p85_speed_kmh: float | None = Field(
        ge=0, le=300, title="85th-percentile speed (v85); v2: over vehicles, not frames"
    )
    speed_histogram: list[NonNegativeCount] | None = Field(
        min_length=len(SPEED_BIN_EDGES_KMH),
        max_length=len(SPEED_BIN_EDGES_KMH),
        title="Speeds per bin (bins: SPEED_BIN_EDGES_KMH); v2: vehicles, v1: frame samples",
    )
    stopped_share: Share = Field(title="Share of vehicle observations that were stopped")
    queue_vehicles: float = Field(ge=0, le=1000, title="Mean queue length in vehicles")
    queue_m: float | None = Field(ge=0, le=10_000, title="Mean queue length in metres")
    density_veh_km_lane: float | None = Field(ge=0, le=1000, title="Density, veh/km/lane")
    density_pcu_km_lane: float | None = Field(
        default=None, ge=0, le=2500, title="Density in passenger-car units per km and lane (v2)"
    )
    los: LevelOfService | None = Field(
        title="HCM-style level of service from density (v2: from PCU density)"
    )

    @model_validator(mode="after")
    def speed_fields_agree(self) -> Self:
        """Speeds exist only for calibrated cameras: all three speed fields or none."""
        present = [
            self.mean_speed_kmh is not None,
            self.p85_speed_kmh is not None,
            self.speed_histogram is not None,
        ]
        if any(present) and not all(present):
            raise ValueError("mean_speed_kmh, p85_speed_kmh and speed_histogram go together")
        return self


class Health(ContractModel):
    """How well the worker saw the interval; lets planners tell a gap from no traffic."""

    reconnects: NonNegativeCount = Field(title="Stream reconnects in the interval")
    stalls: NonNegativeCount = Field(default=0, title="Stream stalls in the interval")
    dropped_reports: NonNegativeCount = Field(
        title="Reports dropped from a full outbox since the last report that carried this"
    )
    outbox_backlog: NonNegativeCount = Field(default=0, title="Reports waiting in the outbox")
    analysed_fps: float | None = Field(
        default=None, ge=0, le=1000, title="Frame rate the worker chose to analyse at (v2)"
    )
    detection_share: Share | None = Field(
        default=None, title="Share of analysed frames that ran the detector (v2)"
    )


Movement = Literal["left", "through", "right", "u_turn"]


class MovementRow(ContractModel):
    """Vehicles of one class that entered by one gate and left by another (v2).

    Counted at the edge from each vehicle's first and last gate; the path itself never leaves
    the worker. ``movement`` is null where the camera declares no intersection layout.
    """

    origin: Label = Field(title="Gate the vehicles entered by")
    destination: Label = Field(title="Gate the vehicles left by")
    movement: Movement | None = Field(title="Turn, from the intersection layout")
    vehicle_class: VehicleClass = Field(title="Vehicle class")
    count: NonNegativeCount = Field(title="Vehicles")


class UnmatchedRow(ContractModel):
    """Vehicles of one class seen at this gate only, so movements reconcile with line counts."""

    gate: Label = Field(title="Gate")
    vehicle_class: VehicleClass = Field(title="Vehicle class")
    count: NonNegativeCount = Field(title="Vehicles")


def interval_report_id(camera_id: str, interval_start: datetime) -> str:
    """Deterministic id: one camera and interval always give one id (idempotent resends).

    The UUID 5 (RFC 9562) of ``camera_id/start``, start as strftime's ``%Y-%m-%dT%H:%M:%SZ``
    writes it, built here as `uuid.uuid5` builds it, in text: the API works it out for every
    report it validates, and `uuid.UUID`'s checks and conversions cost twice the hashing.
    """
    t = interval_start.astimezone(UTC)
    stamp = f"{t.year}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"
    name = REPORT_ID_NAMESPACE_BYTES + f"{camera_id}/{stamp}".encode()
    digest = hashlib.sha1(name, usedforsecurity=False).hexdigest()  # UUID 5's name hash
    variant = "89ab"[int(digest[16], 16) & 0b11]  # the top two bits are 10
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{variant}{digest[17:20]}-{digest[20:32]}"


def align_interval_start(moment: datetime, interval_seconds: int) -> datetime:
    """Start of the wall-clock-aligned interval that contains ``moment`` (UTC)."""
    epoch = moment.astimezone(UTC).timestamp()
    start = epoch - (epoch % interval_seconds)
    return datetime.fromtimestamp(start, tz=UTC)


class IntervalReport(ContractModel):
    """One camera's counts and congestion for one clock-aligned interval."""

    schema_version: SchemaVersion = Field(default=SCHEMA_VERSION, title="Wire contract version")
    report_id: str = Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        title="Deterministic id of (camera, interval_start)",
    )
    camera_id: Label = Field(title="Camera id")
    interval_start: datetime = Field(
        strict=False, title="Interval start, UTC, aligned to interval_seconds"
    )
    interval_seconds: int = Field(title="Interval length in seconds")
    partial: bool = Field(title="True when the worker started or stopped inside the interval")
    coverage: Share = Field(title="Share of the interval actually processed")
    frames_processed: int = Field(ge=0, le=10_000_000, title="Frames analysed")
    fps: float = Field(ge=0, le=1000, title="Frames analysed per second of interval")
    counts: list[CountRow] = Field(max_length=2000, title="Line crossings")
    zones: list[ZoneRow] = Field(max_length=64, title="Zone congestion")
    health: Health = Field(title="Stream and delivery health")
    config_version: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CONFIG_VERSION,
        title="Camera configuration version the interval was counted with (v2)",
    )
    movements: list[MovementRow] = Field(
        default_factory=list, max_length=2000, title="Gate-to-gate movements (v2)"
    )
    unmatched: list[UnmatchedRow] = Field(
        default_factory=list, max_length=320, title="Vehicles seen at one gate only (v2)"
    )

    @model_validator(mode="after")
    def version_one_has_no_later_fields(self) -> Self:
        """A version 1 report is what version 1 workers sent: none of the later fields."""
        if self.schema_version == 1:
            later = [
                name
                for name, present in (
                    ("config_version", self.config_version is not None),
                    ("movements", bool(self.movements)),
                    ("unmatched", bool(self.unmatched)),
                    ("health.analysed_fps", self.health.analysed_fps is not None),
                    ("health.detection_share", self.health.detection_share is not None),
                    (
                        "zones.density_pcu_km_lane",
                        any(z.density_pcu_km_lane is not None for z in self.zones),
                    ),
                )
                if present
            ]
            if later:
                raise ValueError(f"schema_version 1 has no {', '.join(later)}; send version 2")
        return self

    @model_validator(mode="after")
    def interval_is_aligned(self) -> Self:
        """Reject intervals that are not clock-aligned, so two reports can never overlap."""
        if self.interval_seconds not in INTERVAL_CHOICES_S:
            raise ValueError(f"interval_seconds must be one of {INTERVAL_CHOICES_S}")
        start = self.interval_start
        if start.tzinfo is None or start.utcoffset() != timedelta(0):
            raise ValueError("interval_start must be UTC (for example 2026-01-01T00:00:00Z)")
        if start.microsecond or self.interval_start_s % self.interval_seconds:
            raise ValueError("interval_start must be aligned to interval_seconds")
        return self

    @cached_property
    def interval_start_s(self) -> int:
        """`interval_start` in whole seconds since 1970: the key stored reports go by (read
        several times a report in ingest; the model is frozen, so it is worked out once)."""
        return int(self.interval_start.timestamp())

    @model_validator(mode="after")
    def report_id_matches(self) -> Self:
        """The id is derived, never chosen, so a resend can only ever hit the same row."""
        if self.report_id != interval_report_id(self.camera_id, self.interval_start):
            raise ValueError("report_id must be interval_report_id(camera_id, interval_start)")
        return self

    @model_validator(mode="after")
    def rows_are_unique(self) -> Self:
        """One row per (line, direction, class) and per zone: duplicates would double count."""
        keys = [(c.line, c.direction, c.vehicle_class) for c in self.counts]
        if len(keys) != len(set(keys)):
            raise ValueError("counts has more than one row for a (line, direction, vehicle_class)")
        zones = [z.zone for z in self.zones]
        if len(zones) != len(set(zones)):
            raise ValueError("zones has more than one row for a zone")
        moves = [(m.origin, m.destination, m.vehicle_class) for m in self.movements]
        if len(moves) != len(set(moves)):
            raise ValueError("movements has more than one row for an (origin, destination, class)")
        unmatched = [(u.gate, u.vehicle_class) for u in self.unmatched]
        if len(unmatched) != len(set(unmatched)):
            raise ValueError("unmatched has more than one row for a (gate, vehicle_class)")
        return self


class ReportBatch(ContractModel):
    """What a worker posts: a batch of interval reports, oldest first."""

    reports: list[IntervalReport] = Field(
        min_length=1, max_length=MAX_REPORTS_PER_BATCH, title="Interval reports"
    )


StreamState = Literal["connecting", "streaming", "stalled", "reconnecting", "ended"]


class StreamHealth(ContractModel):
    """Health of one camera stream at heartbeat time.

    The frame size and nominal frame rate say what a day of this video would weigh, so the
    public register can set the bytes the camera sends beside it; null until the stream opens.
    """

    camera_id: Label = Field(title="Camera id")
    state: StreamState = Field(title="Source state machine state")
    reconnects: NonNegativeCount = Field(title="Reconnects since the worker started")
    fps: float = Field(ge=0, le=1000, title="Frames analysed per second, recent")
    frame_width: int | None = Field(
        default=None, ge=1, le=MAX_FRAME_SIDE, title="Frame width, pixels"
    )
    frame_height: int | None = Field(
        default=None, ge=1, le=MAX_FRAME_SIDE, title="Frame height, pixels"
    )
    source_fps: float | None = Field(
        default=None, gt=0, le=1000, title="Frame rate the stream states"
    )

    @model_validator(mode="after")
    def frame_size_is_whole(self) -> Self:
        """Width and height come together: one without the other describes no video."""
        if (self.frame_width is None) != (self.frame_height is None):
            raise ValueError("frame_width and frame_height are given together or not at all")
        return self


Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest in lower-case hex."""


class Software(ContractModel):
    """What the worker runs, computed once at start from its installed files, so an operator
    (and the public register) can tell an approved release from anything else."""

    version: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$", title="Package version")
    code_sha256: Sha256 = Field(title="SHA-256 of the installed worker code (see docs/register.md)")
    model_sha256: Sha256 | None = Field(
        title="SHA-256 of the model weights file (null: not a local file)"
    )


ConfigPullStatus = Literal["applied", "refused"]
Reason = Annotated[str, StringConstraints(pattern=r"^[ -~]{1,500}$")]
"""A short printable explanation (no newlines, no markup-bearing control characters)."""


class ConfigPull(ContractModel):
    """What became of the last camera configuration the worker pulled from the API (v2)."""

    version: int = Field(ge=0, le=MAX_CONFIG_VERSION, title="Configuration version pulled")
    status: ConfigPullStatus = Field(title="applied, or refused (the worker kept its last good)")
    reason: Reason | None = Field(default=None, title="Why it was refused")
    at: datetime = Field(strict=False, title="When the worker decided, UTC")

    @model_validator(mode="after")
    def refusal_says_why(self) -> Self:
        """A refusal names its reason; an applied configuration has none."""
        if (self.status == "refused") != (self.reason is not None):
            raise ValueError("a refused configuration has a reason, an applied one has none")
        if self.at.tzinfo is None or not EPOCH <= self.at < LATEST_SENT_AT:
            raise ValueError("at must be a UTC time between 1970 and 2100")
        return self


class Heartbeat(ContractModel):
    """Liveness of a worker, sent between reports; no traffic data in it.

    Fields added later have defaults, so heartbeats of older workers stay valid.
    """

    schema_version: SchemaVersion = Field(default=SCHEMA_VERSION, title="Wire contract version")
    camera_id: Label = Field(title="Camera the device token belongs to")
    sent_at: datetime = Field(strict=False, title="When the worker sent it, UTC")
    uptime_s: float = Field(ge=0, le=10 * 365 * 86400, title="Worker uptime in seconds")
    outbox_backlog: NonNegativeCount = Field(title="Reports waiting in the outbox")
    dropped_reports: NonNegativeCount = Field(title="Reports dropped since start")
    dead_lettered_reports: NonNegativeCount = Field(
        default=0, title="Reports the API rejected, held in the worker's dead-letter table"
    )
    streams: list[StreamHealth] = Field(max_length=64, title="Per-stream health")
    config_version: int = Field(
        ge=0, le=MAX_CONFIG_VERSION, title="Camera configuration version in use"
    )
    config_pull: ConfigPull | None = Field(
        default=None, title="Result of the last configuration pull (v2)"
    )
    software: Software | None = Field(
        default=None, title="Worker version and digests of its code and model weights"
    )

    @model_validator(mode="after")
    def version_one_has_no_pull(self) -> Self:
        """Version 1 workers pulled no configuration."""
        if self.schema_version == 1 and self.config_pull is not None:
            raise ValueError("schema_version 1 has no config_pull; send version 2")
        return self

    @model_validator(mode="after")
    def sent_at_is_storable(self) -> Self:
        """A clock can be wrong (a device without a real-time clock starts in 1970), but a
        time outside 1970-2100 is no clock at all, and some cannot even be converted to UTC."""
        if self.sent_at.tzinfo is None:
            raise ValueError("sent_at needs a timezone (for example 2026-01-01T00:00:00Z)")
        if not EPOCH <= self.sent_at < LATEST_SENT_AT:
            raise ValueError("sent_at must lie between 1970-01-01 and 2100-01-01 (UTC)")
        return self
