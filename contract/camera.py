"""A camera's set-up: count lines, zones, calibration, interval and classes.

Read by the worker (to count), by the API (registration and remote configuration, which is
versioned there) and by ``check-config``: every geometry rule is defined once, here. Each
rule sits on the smallest model it concerns, so one validation run reports every broken line,
zone and calibration, each at its own location.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.geometry import (
    HomographyError,
    fit_homography,
    polygon_problem,
    reprojection_error,
)
from contract.report import (
    INTERVAL_CHOICES_S,
    VEHICLE_CLASSES,
    GeometricDirection,
    Label,
    VehicleClass,
)

Point = tuple[float, float]
MAX_LINES = 32
MAX_ZONES = 16
MAX_CALIBRATION_POINTS = 16
Coordinate = Annotated[float, Field(ge=-1e6, le=1e6)]


class ConfigModel(BaseModel):
    """Base for every set-up section: unknown keys are errors."""

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
    def line_is_usable(self) -> Self:
        """A zero-length line can never be crossed; two directions under one label would be
        merged into one count."""
        problems = []
        (x1, y1), (x2, y2) = self.points
        if (x1, y1) == (x2, y2):
            problems.append("its two points are the same (a line of zero length)")
        labels = list(self.direction_names.values())
        if len(labels) != len(set(labels)):
            problems.append("two directions are renamed to the same label")
        if problems:
            raise ValueError(f"line {self.name!r}: " + "; ".join(problems))
        return self


class Calibration(ConfigModel):
    """Image points and their ground positions in metres: a homography for speed and length.

    Four points fix it; more are fitted by least squares and the re-projection error says how
    well they agree.
    """

    image_points: list[Point] = Field(
        min_length=4, max_length=MAX_CALIBRATION_POINTS, title="Image points"
    )
    ground_points_m: list[Point] = Field(
        min_length=4, max_length=MAX_CALIBRATION_POINTS, title="Ground points, metres"
    )

    @model_validator(mode="after")
    def points_fix_a_homography(self) -> Self:
        """As many ground as image points, and no degenerate set (three on one line, repeats)."""
        if len(self.image_points) != len(self.ground_points_m):
            raise ValueError(
                f"calibration: {len(self.image_points)} image points but "
                f"{len(self.ground_points_m)} ground points; give one ground point per image point"
            )
        try:
            fit_homography(self.image_points, self.ground_points_m)
        except HomographyError as exc:
            raise ValueError(f"calibration: {exc}") from exc
        return self

    def reprojection_error_m(self) -> float:
        """Root-mean-square distance, in metres, between the ground points and where the fitted
        homography puts their image points (0 for exactly four points)."""
        homography = fit_homography(self.image_points, self.ground_points_m)
        return reprojection_error(homography, self.image_points, self.ground_points_m)


class Zone(ConfigModel):
    """A polygon where congestion (presence, occupancy, speed, queue) is measured."""

    name: Label = Field(title="Zone name")
    polygon: list[Point] = Field(min_length=3, max_length=32, title="Polygon vertices")
    lanes: int = Field(default=1, ge=1, le=12, title="Lanes in the zone (for density)")
    length_m: float | None = Field(
        default=None, gt=0, le=2000, title="Zone length along the road in metres (density)"
    )

    @model_validator(mode="after")
    def polygon_is_simple(self) -> Self:
        """A zone of zero area never holds a vehicle; a self-intersecting one has no inside."""
        problem = polygon_problem(self.polygon)
        if problem:
            raise ValueError(f"zone {self.name!r}: {problem}")
        return self


class CameraSetup(ConfigModel):
    """What the API may change on a camera, remotely and versioned: where and what it counts.

    The stream URL, token and model stay on the device; nothing here is secret.
    """

    reference_resolution: tuple[int, int] | None = Field(
        default=None, title="Width, height that pixel coordinates refer to; omit for relative"
    )
    lines: list[CountLine] = Field(default_factory=list, max_length=MAX_LINES, title="Count lines")
    zones: list[Zone] = Field(default_factory=list, max_length=MAX_ZONES, title="Congestion zones")
    calibration: Calibration | None = Field(default=None, title="Ground calibration (speeds)")
    interval_seconds: int = Field(default=60, title="Report interval, aligned to the clock")
    classes: tuple[VehicleClass, ...] | None = Field(
        default=None,
        min_length=1,
        title="Vehicle classes counted on this camera's lines (default: every class detected)",
    )

    @model_validator(mode="after")
    def camera_rules(self) -> Self:
        """Every camera-wide rule, all reported in one run."""
        problems = [
            *self._nothing_to_measure(),
            *self._duplicate_names(),
            *self._points_outside_frame(),
            *self._interval_off_the_clock(),
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _nothing_to_measure(self) -> list[str]:
        """A camera with no line and no zone would report nothing."""
        return [] if self.lines or self.zones else ["needs at least one line or zone"]

    def _duplicate_names(self) -> list[str]:
        """Line and zone names key the counts; duplicates would merge them."""
        problems = []
        for kind, names in (
            ("line", [x.name for x in self.lines]),
            ("zone", [z.name for z in self.zones]),
        ):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                problems.append(f"{kind} names must be unique ({', '.join(repeated)} repeated)")
        return problems

    def _points_outside_frame(self) -> list[str]:
        """Relative coordinates must lie in 0-1, pixels inside the reference resolution."""
        width, height = self.reference_resolution or (1, 1)
        where = "the reference resolution" if self.reference_resolution else "0-1"
        located: list[tuple[str, Point]] = [
            (f"line {line.name!r}", p) for line in self.lines for p in line.points
        ]
        located += [(f"zone {zone.name!r}", p) for zone in self.zones for p in zone.polygon]
        if self.calibration:
            located += [("calibration", p) for p in self.calibration.image_points]
        return [
            f"{what}: point ({x:g}, {y:g}) is outside {where}"
            for what, (x, y) in located
            if not (0 <= x <= width and 0 <= y <= height)
        ]

    def _interval_off_the_clock(self) -> list[str]:
        """Only clock-aligned intervals are allowed, so reports never overlap."""
        if self.interval_seconds in INTERVAL_CHOICES_S:
            return []
        return [f"interval_seconds must be one of {INTERVAL_CHOICES_S}"]

    def scale(self, width: int, height: int) -> tuple[float, float]:
        """Factors that turn configured coordinates into pixels of a frame of this size."""
        ref_w, ref_h = self.reference_resolution or (1, 1)
        return width / ref_w, height / ref_h

    def counted_classes(self) -> tuple[VehicleClass, ...]:
        """The classes whose crossings this camera counts."""
        return self.classes or VEHICLE_CLASSES


SETUP_FIELDS: tuple[str, ...] = tuple(CameraSetup.model_fields)
"""The fields a remote configuration replaces on a worker's camera."""
