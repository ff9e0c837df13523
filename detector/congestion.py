"""Congestion stage: per-zone presence, occupancy, speed, queue and density from tracks.

``ZoneMeter.observe`` turns one frame's tracks into a ``ZoneSample`` (aggregate numbers only)
and ``summarise_zone`` turns one interval's samples into the contract ``ZoneRow``. The only
per-vehicle state, kept in memory and dropped with the track, is a short position history
per track id (to tell stopped vehicles) and each track's passage through the zone (where
and when it was first and last seen inside), so memory stays bounded on an endless stream.

Speeds need a ground calibration (a homography from four image points to ground metres);
an uncalibrated camera reports no speed at all rather than a guessed one. A speed is one
vehicle's passage: the ground distance between where it was first and last seen in the zone
over the time between, so mean and v85 are over vehicles, not frames.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import annotated_types
import cv2
import numpy as np
import numpy.typing as npt

from contract import SPEED_BIN_EDGES_KMH, LevelOfService, ZoneRow
from contract.camera import Calibration, Point, Zone
from contract.geometry import fit_homography
from contract.planning import PcuFactors
from contract.report import MAX_COUNT
from detector.currency import FloatArray, Tracks, ZoneSample

Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SPEED_SPAN_S = 1.0
"""Shortest stream time a stop is judged over: long enough to average out box jitter."""
MAX_SPEED_SPAN_S = 3.0
"""Longest: beyond it a track gap (missed frames, occlusion) would blur the speed."""
STALE_TRACK_S = 2.0
"""A track unseen this long is forgotten, which bounds the history on a 24/7 stream."""
MAX_HISTORY_PER_TRACK = 256
"""Hard cap on positions kept per track (above 120 fps x SPEED_SPAN_S, the fastest analysis)."""

STOPPED_SPEED_KMH = 5.0
"""Calibrated cameras: below this a vehicle counts as stopped (queued)."""
STOPPED_BOX_SIZES_PER_S = 0.25
"""Uncalibrated cameras: moving less than this many box sizes per second counts as stopped
(about 5 km/h for a 4-5 m car whose box's longer side spans its length)."""
MAX_PLAUSIBLE_SPEED_KMH = 250.0
"""Faster measurements are track glitches (an id jumping between vehicles), not vehicles."""
MIN_PASSAGE_M = 5.0
"""Shortest ground distance a passage speed is measured over: half a metre of box jitter at
either end then errs by at most 10 %. A vehicle that only stood or crept in the zone gets
no speed; it shows in the stopped and queue figures instead."""
MIN_PASSAGE_S = 0.5
"""Shortest time a passage speed is measured over: a passage of a frame or two is more
likely a track id jumping between vehicles than a vehicle."""
QUEUE_SPACING_M = 7.5
"""Ground length one queued vehicle occupies, gap included (HCM's 25 ft average spacing)."""

MASK_CELLS = 100
"""Cells along the longer side of a zone's occupancy mask: about 1 % area resolution."""

LOS_MAX_DENSITY_PCU_KM_LANE: tuple[tuple[LevelOfService, float], ...] = (
    ("A", 7.0),
    ("B", 11.0),
    ("C", 16.0),
    ("D", 22.0),
    ("E", 28.0),
)
"""Highest density of each level of service, pc/km/lane; above E's bound is F.

Highway Capacity Manual basic freeway segment criteria: 11/18/26/35/45 pc/mi/ln
(HCM 6th ed., chapter 12), i.e. 7/11/16/22/28 pc/km/ln (HCM 2000 metric, Exhibit 23-2).
Applied to any zone, not only freeway segments, hence "HCM-style".
"""


def level_of_service(density_pcu_km_lane: float) -> LevelOfService:
    """HCM-style level of service of a PCU density (see ``LOS_MAX_DENSITY_PCU_KM_LANE``)."""
    for level, max_density in LOS_MAX_DENSITY_PCU_KM_LANE:
        if density_pcu_km_lane <= max_density:
            return level
    return "F"


def _scaled(points: Sequence[Point], scale: tuple[float, float]) -> Float64Array:
    """Config coordinates (relative or reference pixels) as frame pixels, shape (n, 2)."""
    return np.asarray(points, dtype=np.float64) * np.asarray(scale, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class GroundCalibration:
    """Homography from frame pixels to ground metres, oriented so ground points have w > 0."""

    homography: Float64Array

    @classmethod
    def from_config(cls, calibration: Calibration, scale: tuple[float, float]) -> Self:
        """Build from the configured point pairs (four or more), scaled to this frame size."""
        image = _scaled(calibration.image_points, scale)
        return cls(
            fit_homography([(float(x), float(y)) for x, y in image], calibration.ground_points_m)
        )

    def to_ground(self, points_px: FloatArray) -> FloatArray:
        """Ground metres of image points, shape (n, 2); NaN where a point is above the horizon."""
        projected = points_px.astype(np.float64) @ self.homography[:, :2].T + self.homography[:, 2]
        w = projected[:, 2:]
        return (projected[:, :2] / np.where(w > 0, w, np.nan)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class _Motion:
    """Vehicles in a zone now and about ``SPEED_SPAN_S`` earlier (NaN where not known yet)."""

    now_px: FloatArray
    then_px: FloatArray
    age_s: FloatArray
    boxes_px: FloatArray


_Measured = tuple[int, float | None]
"""How many vehicles are stopped, and the queue they form in metres."""


@dataclass(frozen=True, slots=True)
class _GroundZone:
    """A zone on the calibrated ground: its direction along the road and its length."""

    calibration: GroundCalibration
    direction: Float64Array
    length_m: float

    @classmethod
    def of_polygon(
        cls, name: str, polygon_px: Float64Array, calibration: GroundCalibration
    ) -> Self:
        """Principal axis of the polygon's ground vertices: zones are drawn along the road."""
        polygon_m = calibration.to_ground(polygon_px.astype(np.float32)).astype(np.float64)
        if not np.isfinite(polygon_m).all():
            raise ValueError(f"zone {name!r}: reaches above the calibrated horizon")
        centred = polygon_m - polygon_m.mean(axis=0)
        direction = np.linalg.svd(centred, full_matrices=False)[2][0]
        return cls(calibration, direction, float(np.ptp(polygon_m @ direction)))

    def measure(self, motion: _Motion) -> _Measured:
        """Stops (ground speed over the last second below ``STOPPED_SPEED_KMH``) and the
        queue they form."""
        ground_m = self.calibration.to_ground(np.concatenate((motion.now_px, motion.then_px)))
        now_m, then_m = ground_m[: len(motion.now_px)], ground_m[len(motion.now_px) :]
        moved_m = now_m - then_m
        speed_kmh = np.hypot(moved_m[:, 0], moved_m[:, 1]) / motion.age_s * 3.6
        stopped = np.isfinite(speed_kmh) & (speed_kmh < STOPPED_SPEED_KMH)
        queue_m = self._queue_m(now_m[stopped].astype(np.float64))
        return int(np.count_nonzero(stopped)), queue_m

    def _queue_m(self, stopped_m: Float64Array) -> float:
        """Ground extent of stopped vehicles along the road plus one queue spacing: the
        contact points of the first and last queued vehicle are (n - 1) spacings apart, and
        each vehicle occupies one spacing (HCM counts n x 7.5 m)."""
        if not len(stopped_m):
            return 0.0
        extent = float(np.ptp(stopped_m @ self.direction)) + QUEUE_SPACING_M
        return min(extent, self.length_m)


@dataclass(slots=True)
class _Passage:
    """One track's passage through a zone: where and when it was first and last inside."""

    entry_s: float
    entry_m: tuple[float, float]
    exit_s: float
    exit_m: tuple[float, float]
    seen_s: float
    """When the track was last seen anywhere: a track unseen for ``STALE_TRACK_S`` ended."""
    measured: bool = False
    """Its speed was taken when it left: a vehicle that wobbles back in is not taken twice."""

    def speed_kmh(self) -> float | None:
        """Ground speed over the passage; None while it is too short to measure."""
        span_s = self.exit_s - self.entry_s
        distance_m = math.dist(self.entry_m, self.exit_m)
        if span_s < MIN_PASSAGE_S or distance_m < MIN_PASSAGE_M:
            return None
        return distance_m / span_s * 3.6


@dataclass(slots=True)
class PassageLog:
    """Passages of the tracks through one calibrated zone, for per-vehicle speeds.

    A vehicle's speed is taken in the frame it is first seen outside the zone again, or
    when its track ends inside it (once unseen for ``STALE_TRACK_S``), so it belongs to the
    interval it left in. A passage too short to measure when the vehicle steps out (box
    jitter on the zone's edge) stays open in case it comes back in; one that ends too
    short gives no speed, and an implausible one (``MAX_PLAUSIBLE_SPEED_KMH``) is dropped.
    """

    passages: dict[int, _Passage] = field(default_factory=dict)
    last_time_s: float = -math.inf

    def __len__(self) -> int:
        """Passages remembered: at most one per live track."""
        return len(self.passages)

    def update(
        self, track_ids: Sequence[int], ground_m: FloatArray, inside: BoolArray, now_s: float
    ) -> list[float]:
        """Record this frame's positions; the speeds (km/h) of the vehicles that left."""
        if now_s < self.last_time_s:
            self.passages.clear()
        self.last_time_s = now_s
        left: list[float | None] = []
        for track_id, (x, y), is_inside in zip(
            track_ids, ground_m.tolist(), inside.tolist(), strict=True
        ):
            passage = self.passages.get(track_id)
            if is_inside and math.isfinite(x) and math.isfinite(y):
                if passage is None:
                    passage = self.passages[track_id] = _Passage(
                        now_s, (x, y), now_s, (x, y), now_s
                    )
                elif not passage.measured:
                    passage.exit_s, passage.exit_m = now_s, (x, y)
            if passage is None:
                continue
            passage.seen_s = now_s
            if not is_inside and not passage.measured:
                speed = passage.speed_kmh()
                passage.measured = speed is not None
                left.append(speed)
        for track_id in [t for t, p in self.passages.items() if p.seen_s < now_s - STALE_TRACK_S]:
            passage = self.passages.pop(track_id)
            if not passage.measured:
                left.append(passage.speed_kmh())
        return [s for s in left if s is not None and s <= MAX_PLAUSIBLE_SPEED_KMH]


def _measure_in_image(motion: _Motion) -> _Measured:
    """Uncalibrated: stops from motion relative to the box size, and no queue length."""
    boxes = motion.boxes_px
    box_size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    moved_px = motion.now_px - motion.then_px
    sizes_per_s = (
        np.hypot(moved_px[:, 0], moved_px[:, 1]) / np.maximum(box_size, 1.0) / motion.age_s
    )
    return int(np.count_nonzero(sizes_per_s < STOPPED_BOX_SIZES_PER_S)), None


@dataclass(frozen=True, slots=True)
class _ZoneMask:
    """The zone rasterised onto a small grid over its bounding box, for area shares."""

    cell_x_px: Float64Array
    cell_y_px: Float64Array
    cell_share: Float64Array
    """Each cell's share of the zone's area: 1 / cells inside for those inside, else 0."""

    @classmethod
    def of_polygon(cls, polygon_px: Float64Array) -> Self:
        """Rasterise with sub-pixel vertex precision; the mask never leaves memory."""
        origin = polygon_px.min(axis=0)
        cell_px = float(np.ptp(polygon_px, axis=0).max()) / MASK_CELLS
        columns, rows = np.ceil(np.ptp(polygon_px, axis=0) / cell_px).astype(int) + 1
        grid = np.zeros((rows, columns), dtype=np.uint8)
        fractional_bits = 4
        vertices = (polygon_px - origin) / cell_px - 0.5  # cell centres at whole numbers
        fixed_point = np.round(vertices * 2**fractional_bits).astype(np.int32)
        cv2.fillPoly(grid, [fixed_point], 1, shift=fractional_bits)
        return cls(
            origin[0] + (np.arange(columns) + 0.5) * cell_px,
            origin[1] + (np.arange(rows) + 0.5) * cell_px,
            grid / np.count_nonzero(grid),
        )

    def covered_share(self, boxes_px: FloatArray) -> float:
        """Share of zone cells whose centre lies in at least one box (overlaps count once)."""
        if not len(boxes_px):
            return 0.0
        in_x = (self.cell_x_px >= boxes_px[:, 0:1]) & (self.cell_x_px < boxes_px[:, 2:3])
        in_y = (self.cell_y_px >= boxes_px[:, 1:2]) & (self.cell_y_px < boxes_px[:, 3:4])
        boxes_per_cell = in_y.T.astype(np.float32) @ in_x.astype(np.float32)
        return min(float(np.sum(self.cell_share, where=boxes_per_cell > 0)), 1.0)


@dataclass(slots=True)
class TrackHistory:
    """Recent (time, x, y) image positions per track id: just enough to measure speed."""

    positions: dict[int, deque[tuple[float, float, float]]] = field(default_factory=dict)
    last_time_s: float = -math.inf

    def __len__(self) -> int:
        """Positions remembered over all tracks: the memory this history holds."""
        return sum(len(history) for history in self.positions.values())

    def advance(self, now_s: float) -> None:
        """Forget stale tracks and positions no longer needed; restart if time ran backwards."""
        if now_s < self.last_time_s:
            self.positions.clear()
        self.last_time_s = now_s
        for track_id in [t for t, h in self.positions.items() if h[-1][0] < now_s - STALE_TRACK_S]:
            del self.positions[track_id]
        for history in self.positions.values():
            while len(history) >= 2 and history[1][0] <= now_s - SPEED_SPAN_S:
                history.popleft()

    def references(self, track_ids: Sequence[int], now_s: float) -> tuple[FloatArray, FloatArray]:
        """Each track's position about ``SPEED_SPAN_S`` ago and its age; NaN where unknown."""
        reference = np.full((len(track_ids), 2), np.nan, dtype=np.float32)
        age_s = np.full(len(track_ids), np.nan, dtype=np.float32)
        for row, track_id in enumerate(track_ids):
            history = self.positions.get(track_id)
            if history and SPEED_SPAN_S <= now_s - history[0][0] <= MAX_SPEED_SPAN_S:
                time_s, x, y = history[0]
                reference[row] = (x, y)
                age_s[row] = now_s - time_s
        return reference, age_s

    def record(self, track_ids: Sequence[int], points_px: FloatArray, now_s: float) -> None:
        """Append this frame's positions."""
        for track_id, (x, y) in zip(track_ids, points_px.tolist(), strict=True):
            history = self.positions.setdefault(track_id, deque(maxlen=MAX_HISTORY_PER_TRACK))
            history.append((now_s, x, y))


def _contact_points(xyxy: FloatArray) -> FloatArray:
    """Bottom-centre of each box: where the vehicle touches the road."""
    return np.column_stack(((xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3])).astype(np.float32)


class ZoneMeter:
    """One per zone per camera; the per-track state it keeps lives only as long as the track."""

    def __init__(
        self,
        zone: Zone,
        scale: tuple[float, float],
        calibration: GroundCalibration | None,
        pcu: PcuFactors,
    ) -> None:
        polygon_px = _scaled(zone.polygon, scale)
        if cv2.contourArea(polygon_px.astype(np.float32)) <= 0:
            raise ValueError(f"zone {zone.name!r}: polygon encloses no area")
        self.zone = zone
        self.pcu = pcu
        self._contour = polygon_px.astype(np.float32).reshape(-1, 1, 2)
        self._mask = _ZoneMask.of_polygon(polygon_px)
        self._ground = (
            _GroundZone.of_polygon(zone.name, polygon_px, calibration) if calibration else None
        )
        self.length_m = zone.length_m or (self._ground.length_m if self._ground else None)
        self._history = TrackHistory()
        self._passages = PassageLog()

    @property
    def remembered_positions(self) -> int:
        """Track positions and passages held, over all tracks: bounded on an endless stream."""
        return len(self._history) + len(self._passages)

    def observe(self, tracks: Tracks) -> ZoneSample:
        """Aggregate state of the zone in this frame; called once per analysed frame."""
        now_s = tracks.meta.timestamp_s
        points = _contact_points(tracks.xyxy)
        track_ids = tracks.track_id.tolist()
        self._history.advance(now_s)
        reference, age_s = self._history.references(track_ids, now_s)
        self._history.record(track_ids, points, now_s)

        inside = self._contains(points)
        motion = _Motion(points[inside], reference[inside], age_s[inside], tracks.xyxy[inside])
        speeds_kmh: list[float] = []
        if self._ground:
            stopped, queue_m = self._ground.measure(motion)
            ground_m = np.full(points.shape, np.nan, dtype=np.float32)
            ground_m[inside] = self._ground.calibration.to_ground(points[inside])
            speeds_kmh = self._passages.update(track_ids, ground_m, inside, now_s)
        else:
            stopped, queue_m = _measure_in_image(motion)
        vehicles = int(np.count_nonzero(inside))
        pcu = sum(self.pcu.of(tracks.vehicle_class[i]) for i in np.flatnonzero(inside).tolist())
        return ZoneSample(
            zone=self.zone.name,
            timestamp_s=now_s,
            vehicles=vehicles,
            area_share=self._mask.covered_share(motion.boxes_px),
            speeds_kmh=tuple(speeds_kmh),
            stopped=stopped,
            queue_vehicles=stopped,
            queue_m=queue_m,
            density_veh_km_lane=self._density(vehicles),
            density_pcu_km_lane=self._density(pcu),
        )

    def _contains(self, points: FloatArray) -> BoolArray:
        """Which contact points lie in the zone polygon (its edge included)."""
        return np.array(
            [cv2.pointPolygonTest(self._contour, (x, y), False) >= 0 for x, y in points.tolist()],
            dtype=bool,
        ).reshape(-1)

    def _density(self, amount: float) -> float | None:
        """Vehicles (or PCU) per km per lane in this frame; unknown without a zone length."""
        if self.length_m is None:
            return None
        return amount / (self.length_m / 1000) / self.zone.lanes


def _contract_max(field_name: str) -> float:
    """Upper bound of a ZoneRow field, read from the contract rather than repeated here."""
    bounds = ZoneRow.model_fields[field_name].metadata
    upper = next(b.le for b in bounds if isinstance(b, annotated_types.Le))
    assert isinstance(upper, int | float)
    return float(upper)


def _speed_histogram(speeds_kmh: Float64Array) -> list[int]:
    """Vehicles per contract speed bin (the last bin is open-ended)."""
    bins = np.searchsorted(np.asarray(SPEED_BIN_EDGES_KMH), speeds_kmh, side="right") - 1
    counts = np.bincount(bins, minlength=len(SPEED_BIN_EDGES_KMH))
    return [min(int(c), MAX_COUNT) for c in counts]


def _speed_fields(
    samples: Sequence[ZoneSample], calibrated: bool
) -> tuple[float | None, float | None, list[int] | None]:
    """Mean, v85 and histogram of the interval's vehicle speeds (one per vehicle that left
    the zone); all or none. v85 is the speed 85 % of the vehicles do not exceed (nearest
    rank): with that definition the v85 of merged intervals lies between theirs, which the
    API uses when it merges histograms."""
    speeds = np.fromiter((s for sample in samples for s in sample.speeds_kmh), dtype=np.float64)
    if not calibrated or not len(speeds):
        return None, None, None
    v85 = float(np.percentile(speeds, 85, method="inverted_cdf"))
    return float(speeds.mean()), v85, _speed_histogram(speeds)


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """Mean of the known values; None when none is known."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _capped(value: float | None, field_name: str) -> float | None:
    """A mean held to its contract bound (a tiny zone length can make densities huge)."""
    return None if value is None else min(value, _contract_max(field_name))


def summarise_zone(zone: Zone, samples: Sequence[ZoneSample], calibrated: bool) -> ZoneRow:
    """One interval's samples of one zone as the contract row.

    Samples are taken to be evenly spaced in time (the detector's frame rate), so a share of
    samples is a share of time. Speeds are one per vehicle that left the zone in the
    interval (``PassageLog``): a slow vehicle weighs no more than a fast one. The level of
    service follows the density in passenger-car units.
    Raises ValueError for an interval without samples: a gap must not read as an empty road.
    """
    if not samples:
        raise ValueError(f"zone {zone.name!r}: no samples in the interval")
    vehicles = np.array([s.vehicles for s in samples], dtype=np.float64)
    mean_speed, p85_speed, histogram = _speed_fields(samples, calibrated)
    queue_m = _mean_or_none([s.queue_m for s in samples]) if calibrated else None
    density = _capped(
        _mean_or_none([s.density_veh_km_lane for s in samples]), "density_veh_km_lane"
    )
    density_pcu = _capped(
        _mean_or_none([s.density_pcu_km_lane for s in samples]), "density_pcu_km_lane"
    )
    return ZoneRow(
        zone=zone.name,
        mean_vehicles=float(vehicles.mean()),
        max_vehicles=int(vehicles.max()),
        occupancy_time=float(np.mean(vehicles > 0)),
        occupancy_area=float(np.mean([s.area_share for s in samples])),
        mean_speed_kmh=mean_speed,
        p85_speed_kmh=p85_speed,
        speed_histogram=histogram,
        stopped_share=float(sum(s.stopped for s in samples) / max(vehicles.sum(), 1.0)),
        queue_vehicles=float(np.mean([s.queue_vehicles for s in samples])),
        queue_m=_capped(queue_m, "queue_m"),
        density_veh_km_lane=density,
        density_pcu_km_lane=density_pcu,
        los=None if density_pcu is None else level_of_service(density_pcu),
    )
