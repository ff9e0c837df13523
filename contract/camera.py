"""A camera's set-up: count lines, zones, calibration, interval and classes.

Read by the worker (to count), by the API (registration and remote configuration, which is
versioned there) and by ``check-config``: every geometry rule is defined once, here. Each
rule sits on the smallest model it concerns, so one validation run reports every broken line,
zone and calibration, each at its own location.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from contract.geometry import (
    HomographyError,
    fit_homography,
    polygon_problem,
    reprojection_error,
)
from contract.planning import Intersection, PcuFactors
from contract.report import (
    INTERVAL_CHOICES_S,
    MAX_FRAME_SIDE,
    VEHICLE_CLASSES,
    GeometricDirection,
    Label,
    VehicleClass,
)

MAX_LINES = 32
MAX_ZONES = 16
MAX_CALIBRATION_POINTS = 16
Coordinate = Annotated[float, Field(ge=-1e6, le=1e6)]
"""Bounded, so geometry on hostile input never overflows (frames are at most 16384 pixels)."""
Point = tuple[Coordinate, Coordinate]
FrameSide = Annotated[int, Field(ge=1, le=MAX_FRAME_SIDE)]


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

    def crossing_directions(
        self, scale: tuple[float, float] = (1.0, 1.0)
    ) -> tuple[GeometricDirection, GeometricDirection]:
        """The two geometric directions the line is crossed in once scaled to frame pixels:
        down/up across a line that runs more across the frame than down it, else left/right
        (the worker's counting rule; relative coordinates need the frame's scale)."""
        (x1, y1), (x2, y2) = self.points
        across, down = abs(x2 - x1) * scale[0], abs(y2 - y1) * scale[1]
        return ("down", "up") if across >= down else ("left", "right")


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


def naming_problems(line_names: list[str], zone_names: list[str]) -> list[str]:
    """A camera with no line and no zone would report nothing; line and zone names key the
    counts, so duplicates would merge them. (Also the API registry's rule.)"""
    if not line_names and not zone_names:
        return ["needs at least one line or zone"]
    problems = []
    for kind, names in (("line", line_names), ("zone", zone_names)):
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(f"{kind} names must be unique ({', '.join(repeated)} repeated)")
    return problems


def interval_problems(interval_seconds: int) -> list[str]:
    """Only clock-aligned intervals are allowed, so reports never overlap."""
    if interval_seconds in INTERVAL_CHOICES_S:
        return []
    return [f"interval_seconds must be one of {INTERVAL_CHOICES_S}"]


class CameraSetup(ConfigModel):
    """What the API may change on a camera, remotely and versioned: where and what it counts.

    The stream URL, token and model stay on the device; nothing here is secret.
    """

    reference_resolution: tuple[FrameSide, FrameSide] | None = Field(
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
    intersection: Intersection | None = Field(
        default=None,
        title="Intersection layout: which count line is which leg (names turning movements)",
    )
    pcu: PcuFactors = Field(
        default_factory=PcuFactors, title="Passenger-car units per class (density, LOS, totals)"
    )

    @model_validator(mode="after")
    def camera_rules(self) -> Self:
        """Every camera-wide rule, all reported in one run."""
        problems = self._camera_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="wrap")
    @classmethod
    def every_problem_in_one_run(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """Pydantic skips camera-wide rules once a line or zone is broken; an installer should
        still learn in the same run that another point lies outside the frame."""
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            said = " ".join(str(error["msg"]) for error in errors)
            more = [p for p in _camera_problems_of_raw(data) if p not in said]
            if not more:
                raise
            extra: list[InitErrorDetails] = [
                {
                    "type": PydanticCustomError("camera_rule", "{problem}", {"problem": p}),
                    "loc": (),
                    "input": data,
                }
                for p in more
            ]
            raise ValidationError.from_exception_data(
                exc.title,
                [*errors, *extra],  # type: ignore[list-item]
            ) from None

    def _camera_problems(self) -> list[str]:
        return [
            *self._names(),
            *self._points_outside_frame(),
            *self._interval_off_the_clock(),
            *self._legs_without_gate(),
        ]

    def _names(self) -> list[str]:
        return naming_problems([x.name for x in self.lines], [z.name for z in self.zones])

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
        return interval_problems(self.interval_seconds)

    def _legs_without_gate(self) -> list[str]:
        """Every leg of the intersection layout names one of this camera's count lines."""
        if self.intersection is None:
            return []
        lines = {line.name for line in self.lines}
        return [
            f"intersection leg {leg.gate!r} is not a count line of this camera"
            for leg in self.intersection.legs
            if leg.gate not in lines
        ]

    def scale(self, width: int, height: int) -> tuple[float, float]:
        """Factors that turn configured coordinates into pixels of a frame of this size."""
        ref_w, ref_h = self.reference_resolution or (1, 1)
        return width / ref_w, height / ref_h

    def counted_classes(self) -> tuple[VehicleClass, ...]:
        """The classes whose crossings this camera counts."""
        return self.classes or VEHICLE_CLASSES


def _camera_problems_of_raw(data: Any) -> list[str]:
    """The camera-wide rules on input that failed validation: each line, zone and calibration
    that is well-formed enough to read takes part; anything unreadable is left to pydantic."""
    if not isinstance(data, dict):
        return []
    try:
        lines = [
            CountLine.model_construct(name=str(x["name"]), points=_raw_pair(x["points"]))
            for x in data.get("lines") or []
        ]
        zones = [
            Zone.model_construct(name=str(z["name"]), polygon=_raw_points(z["polygon"]))
            for z in data.get("zones") or []
        ]
        raw_calibration = data.get("calibration")
        calibration = (
            Calibration.model_construct(
                image_points=_raw_points(raw_calibration["image_points"]), ground_points_m=[]
            )
            if raw_calibration
            else None
        )
        resolution = data.get("reference_resolution")
        setup = CameraSetup.model_construct(
            reference_resolution=(int(resolution[0]), int(resolution[1])) if resolution else None,
            lines=lines,
            zones=zones,
            calibration=calibration,
            interval_seconds=data.get("interval_seconds", 60),
        )
        return setup._camera_problems()
    except (KeyError, IndexError, TypeError, ValueError, OverflowError):
        return []


def _raw_points(raw: Any) -> list[Point]:
    return [(float(x), float(y)) for x, y in raw]


def _raw_pair(raw: Any) -> tuple[Point, Point]:
    start, end = _raw_points(raw)
    return start, end


SETUP_FIELDS: tuple[str, ...] = tuple(CameraSetup.model_fields)
"""The fields a remote configuration replaces on a worker's camera."""
