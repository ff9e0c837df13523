"""Site configuration of an edge worker: cameras, count lines, zones, model and delivery.

One YAML file per site, validated strictly (unknown keys are errors) so a typo never
silently turns a feature off. Coordinates are either relative (0-1 of the frame) or
pixels of a stored ``reference_resolution``, so a camera can change resolution without
moving its lines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract import (
    INTERVAL_CHOICES_S,
    VEHICLE_CLASSES,
    GeometricDirection,
    Label,
    VehicleClass,
)

CONFIG_VERSION: Literal[1] = 1
DEFAULT_MODEL = "yolo26n.pt"
"""The official weights name: Ultralytics fetches it for users who are online."""

MODEL_ENV = "TALLY_MODEL"
TOKEN_ENV = "TALLY_DEVICE_TOKEN"  # noqa: S105 (a variable name, not a secret)

Point = tuple[float, float]


class ConfigModel(BaseModel):
    """Base for every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CountLine(ConfigModel):
    """A directed count line. Each vehicle is counted once per line when its centre crosses."""

    name: Label = Field(title="Line name")
    points: tuple[Point, Point] = Field(title="Two end points (relative 0-1 or reference pixels)")
    direction_names: dict[GeometricDirection, Label] = Field(
        default_factory=dict,
        title="Rename geometric directions, e.g. {down: southbound, up: northbound}",
    )

    @model_validator(mode="after")
    def line_has_length(self) -> Self:
        """A zero-length line can never be crossed."""
        (x1, y1), (x2, y2) = self.points
        if (x1, y1) == (x2, y2):
            raise ValueError(f"line {self.name!r}: its two points are the same")
        return self


class Calibration(ConfigModel):
    """Four image points and their ground positions in metres: a homography for speed."""

    image_points: tuple[Point, Point, Point, Point] = Field(title="Image points")
    ground_points_m: tuple[Point, Point, Point, Point] = Field(title="Ground points, metres")


class Zone(ConfigModel):
    """A polygon where congestion (presence, occupancy, speed, queue) is measured."""

    name: Label = Field(title="Zone name")
    polygon: list[Point] = Field(min_length=3, max_length=32, title="Polygon vertices")
    lanes: int = Field(default=1, ge=1, le=12, title="Lanes in the zone (for density)")
    length_m: float | None = Field(
        default=None, gt=0, le=2000, title="Zone length along the road in metres (density)"
    )


class ModelSettings(ConfigModel):
    """Detector model and inference settings."""

    path: str = Field(default=DEFAULT_MODEL, title="YOLO weights path or official name")
    imgsz: int | None = Field(
        default=None, ge=96, le=1920, title="Inference size; default picks one per frame size"
    )
    confidence: float = Field(default=0.05, ge=0.01, le=0.95, title="Detection confidence floor")
    classes: tuple[VehicleClass, ...] = Field(
        default=VEHICLE_CLASSES, min_length=1, title="Vehicle classes to detect and count"
    )
    backend: Literal["auto", "torch", "openvino"] = Field(
        default="auto", title="auto exports an OpenVINO copy on first run for fast CPU inference"
    )
    device: str = Field(default="cpu", max_length=32, title="Torch device, e.g. cpu or 0")
    cache_dir: Path | None = Field(default=None, title="Where exported model copies are cached")


class Camera(ConfigModel):
    """One stream with its lines and zones."""

    id: Label = Field(title="Camera id (as registered in the API)")
    source: str = Field(min_length=1, max_length=2048, title="File, RTSP/HTTP URL or device index")
    reference_resolution: tuple[int, int] | None = Field(
        default=None, title="Width, height that pixel coordinates refer to; omit for relative"
    )
    lines: list[CountLine] = Field(default_factory=list, max_length=32, title="Count lines")
    zones: list[Zone] = Field(default_factory=list, max_length=16, title="Congestion zones")
    calibration: Calibration | None = Field(default=None, title="Ground calibration (speeds)")
    interval_seconds: int = Field(default=60, title="Report interval, aligned to the clock")
    token_file: Path | None = Field(
        default=None, title="This camera's device token file (multi-camera workers)"
    )
    plays: int = Field(
        default=1, ge=0, le=1_000_000, title="Times a file source is played (0: forever; demos)"
    )
    max_detect_fps: float = Field(
        default=30.0, gt=0, le=120, title="Analyse at most this many frames per stream second"
    )

    @model_validator(mode="after")
    def has_something_to_measure(self) -> Self:
        """A camera with no line and no zone would report nothing."""
        if not self.lines and not self.zones:
            raise ValueError(f"camera {self.id!r}: needs at least one line or zone")
        return self

    @model_validator(mode="after")
    def names_are_unique(self) -> Self:
        """Line and zone names key the counts; duplicates would merge them."""
        for kind, names in (
            ("line", [x.name for x in self.lines]),
            ("zone", [z.name for z in self.zones]),
        ):
            if len(names) != len(set(names)):
                raise ValueError(f"camera {self.id!r}: {kind} names must be unique")
        return self

    @model_validator(mode="after")
    def coordinates_in_frame(self) -> Self:
        """Relative coordinates must lie in 0-1, pixels inside the reference resolution."""
        width, height = self.reference_resolution or (1, 1)
        points = [p for line in self.lines for p in line.points]
        points += [p for zone in self.zones for p in zone.polygon]
        if self.calibration:
            points += list(self.calibration.image_points)
        for x, y in points:
            if not (0 <= x <= width and 0 <= y <= height):
                where = "the reference resolution" if self.reference_resolution else "0-1"
                raise ValueError(f"camera {self.id!r}: point ({x}, {y}) is outside {where}")
        return self

    @model_validator(mode="after")
    def interval_divides_the_day(self) -> Self:
        """Only clock-aligned intervals are allowed, so reports never overlap."""
        if self.interval_seconds not in INTERVAL_CHOICES_S:
            raise ValueError(f"interval_seconds must be one of {INTERVAL_CHOICES_S}")
        return self

    def scale(self, width: int, height: int) -> tuple[float, float]:
        """Factors that turn configured coordinates into pixels of a frame of this size."""
        ref_w, ref_h = self.reference_resolution or (1, 1)
        return width / ref_w, height / ref_h


class Uplink(ConfigModel):
    """Where and how reports are delivered."""

    api_url: str | None = Field(default=None, max_length=2048, title="Central API base URL")
    token_file: Path | None = Field(default=None, title="File holding the device token")
    timeout_s: float = Field(default=10, gt=0, le=300, title="HTTP timeout")
    batch_size: int = Field(default=100, ge=1, le=500, title="Reports per request")
    heartbeat_s: float = Field(default=60, ge=5, le=3600, title="Heartbeat period")


class Outbox(ConfigModel):
    """Durable queue of reports waiting for delivery."""

    path: Path = Field(default=Path("tally-outbox.db"), title="SQLite outbox file")
    max_reports: int = Field(default=100_000, ge=10, le=10_000_000, title="Drop-oldest bound")


class SiteConfig(ConfigModel):
    """A worker's whole configuration."""

    version: Literal[1] = Field(default=CONFIG_VERSION, title="Config file format version")
    config_version: int = Field(default=1, ge=0, le=1_000_000, title="Revision of this site")
    site: Label = Field(title="Site id")
    model: ModelSettings = Field(default_factory=ModelSettings, title="Detector")
    cameras: list[Camera] = Field(min_length=1, max_length=64, title="Cameras")
    uplink: Uplink = Field(default_factory=Uplink, title="Delivery")
    outbox: Outbox = Field(default_factory=Outbox, title="Outbox")

    @model_validator(mode="after")
    def camera_ids_unique(self) -> Self:
        """Camera ids key every report."""
        ids = [c.id for c in self.cameras]
        if len(ids) != len(set(ids)):
            raise ValueError("camera ids must be unique")
        return self


class ConfigError(Exception):
    """A config that cannot be used, with a message fit for an installer."""


def load_config(path: Path) -> SiteConfig:
    """Read and validate a site config; every problem is reported with its location."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return SiteConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc)}") from exc


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: 'cameras.0.lines.1.points: ...'."""
    lines = [f"{exc.error_count()} problem(s)"]
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def resolve_model_path(cli_value: str | None, configured: str) -> str:
    """--model beats TALLY_MODEL beats the config file."""
    return cli_value or os.environ.get(MODEL_ENV) or configured
