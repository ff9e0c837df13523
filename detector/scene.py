"""Scene learning: confirmed Tracks -> an aggregate map of where vehicles drive (``SceneMap``).

A grid over the frame; per cell, over one learning window: how many distinct vehicles their
box centre passed through, their mean motion, their stopped share and the class mix. Motion
is averaged per vehicle (a vehicle's own mean in the cell, then the mean over vehicles), so a
vehicle that lingers weighs no more than one that passes. Track ids are used here, in
memory, only while a track lives: when it ends, the cells it passed and its motion in them
are added to per-cell tallies and the track is forgotten. Tallies are kept for the grid and
each halving of it, so a map with more qualifying cells than the contract allows can be sent
coarser without double-counting a vehicle. Cells seen by fewer than ``k`` vehicles are
withheld from every map, and so is any class count below ``k``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from contract import VEHICLE_CLASSES, VehicleClass
from contract.scene import (
    MAX_SCENE_CELLS,
    MAX_SCENE_COUNT,
    MAX_SPEED_PX_S,
    Proposals,
    SceneCell,
    SceneMap,
)
from contract.site import SceneSettings
from detector.congestion import STALE_TRACK_S, STOPPED_BOX_SIZES_PER_S, TrackHistory
from detector.currency import Tracks
from detector.propose import propose
from detector.track import CLASS_INDEX

log = logging.getLogger(__name__)

Float64Array = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]

MIN_TRACK_FRAMES = 3
"""A track seen on fewer analysed frames is a flicker, not a vehicle, and is not tallied."""
MAX_FRAME_GAP_S = 5.0
"""A longer pause between analysed frames is an outage: it is not analysed stream time."""
JUMP = 0.25
"""A track that moves this share of the frame's diagonal between two frames is another
vehicle."""
MAX_CELLS_BYTES = 50_000
"""Cells of a map take at most this much compact JSON (the grid is halved until they do),
leaving room for the proposals under the contract's 64 KiB."""
COARSEST_CELLS = 160
"""Halvings are kept down to a grid this small, which always fits both bounds."""
MAX_VEHICLES = 10_000_000
MOTION_SUMS = ("observations", "stopped", "moving", "vx", "vy")
"""What a live track sums per cell it passed (``_Trail.motion``)."""
MOTION_FIELDS = ("observed", "stopped", "moving", "vx", "vy")


@dataclass(frozen=True, slots=True)
class _Grid:
    """Square-ish cells over the frame: ``grid`` along its long side."""

    width: int
    height: int
    cols: int
    rows: int

    @classmethod
    def over(cls, width: int, height: int, grid: int) -> _Grid:
        cell = max(width, height) / grid
        return cls(width, height, max(1, round(width / cell)), max(1, round(height / cell)))

    @property
    def diagonal(self) -> float:
        return math.hypot(self.width, self.height)

    def halved(self) -> _Grid:
        """The grid with half as many cells each way (rounded up)."""
        return _Grid(self.width, self.height, -(-self.cols // 2), -(-self.rows // 2))

    def cell_of(self, x: float, y: float) -> int:
        """Flat index (row-major) of the cell holding a point; points off the frame clamp."""
        col = min(max(int(x * self.cols / self.width), 0), self.cols - 1)
        row = min(max(int(y * self.rows / self.height), 0), self.rows - 1)
        return row * self.cols + col

    def cells_along(self, start: tuple[float, float], end: tuple[float, float]) -> set[int]:
        """Cells a straight move from ``start`` to ``end`` passes, ``start``'s own excluded
        (the previous step counted it), ``end``'s included even for no move at all."""
        cell_px = min(self.width / self.cols, self.height / self.rows)
        steps = max(1, math.ceil(math.dist(start, end) / (cell_px / 2)))
        (x0, y0), (x1, y1) = start, end
        return {
            self.cell_of(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps)
            for i in range(1, steps + 1)
        }

    def parents(self, coarse: _Grid) -> Int64Array:
        """For each cell of this grid, the cell of ``coarse`` that holds its centre."""
        rows, cols = np.divmod(np.arange(self.cols * self.rows), self.cols)
        coarse_cols = ((cols + 0.5) * coarse.cols / self.cols).astype(np.int64)
        coarse_rows = ((rows + 0.5) * coarse.rows / self.rows).astype(np.int64)
        return coarse_rows * coarse.cols + coarse_cols


@dataclass(slots=True)
class _Trail:
    """What is remembered of one live track: enough to rasterise its next step, no more."""

    centre: tuple[float, float]
    seen_s: float
    vehicle_class: VehicleClass
    frames: int = 1
    visited: set[int] = field(default_factory=set)
    step: set[int] = field(default_factory=set)
    """Cells entered on the last step (all visited ones until its speed is first known)."""
    measured: bool = False
    motion: dict[int, list[float]] = field(default_factory=dict)
    """Per fine cell this vehicle's own observations there: [observations, stopped, moving,
    summed vx, summed vy] (bounded by the cells it passed)."""

    def observe(self, velocity: tuple[float, float], stopped: bool) -> None:
        """One motion observation, credited to the cells of the last step."""
        for cell in self.step:
            sums = self.motion.setdefault(cell, [0.0] * len(MOTION_SUMS))
            sums[0] += 1
            if stopped:
                sums[1] += 1
            else:
                sums[2] += 1
                sums[3] += velocity[0]
                sums[4] += velocity[1]


@dataclass(slots=True)
class _Tally:
    """Distinct vehicles per cell and per class, at one grid resolution."""

    vehicles: Int64Array
    classes: Int64Array

    @classmethod
    def empty(cls, cells: int) -> _Tally:
        return cls(np.zeros(cells, np.int64), np.zeros((cells, len(VEHICLE_CLASSES)), np.int64))

    def add(self, cells: Int64Array, vehicle_class: VehicleClass) -> None:
        self.vehicles[cells] += 1
        self.classes[cells, CLASS_INDEX[vehicle_class]] += 1

    def copy(self) -> _Tally:
        return _Tally(self.vehicles.copy(), self.classes.copy())


@dataclass(slots=True)
class _Motion:
    """Per cell of one resolution, one vote per vehicle: the vehicles observed there, the sum
    of their stopped shares, the vehicles seen moving and the sum of their mean velocities."""

    observed: Float64Array
    stopped: Float64Array
    moving: Float64Array
    vx: Float64Array
    vy: Float64Array

    @classmethod
    def empty(cls, cells: int) -> _Motion:
        return cls(*(np.zeros(cells) for _ in range(5)))

    def add(self, coarse: Int64Array, sums: Float64Array) -> None:
        """One vehicle's per-fine-cell sums (rows of ``MOTION_SUMS``), its fine cells mapped
        to this resolution by ``coarse``: its means per cell, each counted once."""
        cells, inverse = np.unique(coarse, return_inverse=True)
        merged = np.zeros((len(cells), sums.shape[1]))
        np.add.at(merged, inverse, sums)
        observations, stopped, moving, vx, vy = merged.T
        seen, moved = observations > 0, moving > 0
        self.observed[cells[seen]] += 1
        self.stopped[cells[seen]] += stopped[seen] / observations[seen]
        self.moving[cells[moved]] += 1
        self.vx[cells[moved]] += vx[moved] / moving[moved]
        self.vy[cells[moved]] += vy[moved] / moving[moved]

    def copy(self) -> _Motion:
        return _Motion(*(getattr(self, name).copy() for name in MOTION_FIELDS))


@dataclass(slots=True)
class _Window:
    """All tallies of one learning window over one frame size: the grid and each halving of
    it down to one that always fits the contract."""

    grids: list[_Grid]
    parents: list[Int64Array]
    tallies: list[_Tally]
    motions: list[_Motion]
    vehicles: int = 0

    @classmethod
    def over(cls, grid: _Grid) -> _Window:
        grids = [grid]
        while grids[-1].cols * grids[-1].rows > COARSEST_CELLS:
            grids.append(grids[-1].halved())
        return cls(
            grids,
            [grid.parents(coarse) for coarse in grids],
            [_Tally.empty(g.cols * g.rows) for g in grids],
            [_Motion.empty(g.cols * g.rows) for g in grids],
        )

    def add_vehicle(self, tallies: list[_Tally], motions: list[_Motion], trail: _Trail) -> None:
        """One vehicle: each cell it passed and its motion there, once per cell at every
        resolution."""
        visited = trail.visited
        fine = np.fromiter(visited, np.int64, len(visited))
        moved = np.fromiter(trail.motion, np.int64, len(trail.motion))
        sums = np.array(list(trail.motion.values()), np.float64).reshape(-1, len(MOTION_SUMS))
        for parents, tally, motion in zip(self.parents, tallies, motions, strict=True):
            tally.add(np.unique(parents[fine]), trail.vehicle_class)
            if len(moved):
                motion.add(parents[moved], sums)


class SceneLearner:
    """Implements ``engine.TrackObserver``: learns one scene map per window from live tracks."""

    def __init__(self, settings: SceneSettings) -> None:
        self.settings = settings
        self._window: _Window | None = None
        self._trails: dict[int, _Trail] = {}
        self._history = TrackHistory()
        self._last_frame_s: float | None = None
        self._analysed_s = 0.0

    @property
    def analysed_s(self) -> float:
        """Stream seconds analysed in this window (outages and pauses left out)."""
        return self._analysed_s

    @property
    def live_tracks(self) -> int:
        """Tracks remembered now: bounded by the vehicles in view, whatever the stream length."""
        return len(self._trails)

    def reset(self) -> None:
        """Start a fresh window. Live tracks keep their last position (their motion goes on)
        but nothing they did before counts in the new window."""
        self._window = None
        self._analysed_s = 0.0
        for trail in self._trails.values():
            trail.visited = set()
            trail.motion = {}
            trail.frames = 0

    def observe(self, tracks: Tracks) -> None:
        """Add one analysed frame's confirmed tracks."""
        now = tracks.meta.timestamp_s
        window = self._window_for(tracks.meta.width, tracks.meta.height)
        self._advance_clock(now)
        track_ids = tracks.track_id.tolist()
        centres = tracks.centres()
        references, ages = self._history.references(track_ids, now)
        self._history.record(track_ids, centres, now)
        box_px = np.maximum(
            tracks.xyxy[:, 2] - tracks.xyxy[:, 0], tracks.xyxy[:, 3] - tracks.xyxy[:, 1]
        )
        for i, track_id in enumerate(track_ids):
            centre = (float(centres[i, 0]), float(centres[i, 1]))
            trail = self._step(window.grids[0], track_id, centre, now, tracks.vehicle_class[i])
            if trail.frames > 1 and not math.isnan(ages[i]):
                reference = (float(references[i, 0]), float(references[i, 1]))
                self._add_motion(trail, reference, float(ages[i]), float(box_px[i]))
        self._finish_stale(now)

    def _window_for(self, width: int, height: int) -> _Window:
        """This window's tallies; a new frame size starts learning again (cells would not
        line up)."""
        window = self._window
        if window is not None and (window.grids[0].width, window.grids[0].height) == (
            width,
            height,
        ):
            return window
        if window is not None:
            log.warning("scene map: frame size changed to %dx%d; learning again", width, height)
            self._trails.clear()
            self._history = TrackHistory()
            self._analysed_s = 0.0
        self._window = _Window.over(_Grid.over(width, height, self.settings.grid))
        return self._window

    def _advance_clock(self, now: float) -> None:
        """Count analysed stream time; time running backwards is a restarted stream, whose
        tracks are new vehicles."""
        last = self._last_frame_s
        if last is not None and now < last:
            for trail in self._trails.values():
                self._finish(trail)
            self._trails.clear()
        elif last is not None and now - last <= MAX_FRAME_GAP_S:
            self._analysed_s += now - last
        self._last_frame_s = now
        self._history.advance(now)

    def _step(
        self,
        grid: _Grid,
        track_id: int,
        centre: tuple[float, float],
        now: float,
        vehicle_class: VehicleClass,
    ) -> _Trail:
        """Move a track's trail to this frame's centre, marking the cells in between. A jump
        no vehicle makes is another vehicle under a reused id (a tracker rebuilt when the
        set-up changed numbers its tracks from 1 again)."""
        trail = self._trails.get(track_id)
        if trail is not None and math.dist(trail.centre, centre) > JUMP * grid.diagonal:
            self._finish(self._trails.pop(track_id))
            self._history.positions.pop(track_id, None)
            trail = None
        if trail is None:
            trail = self._trails[track_id] = _Trail(centre, now, vehicle_class)
            trail.visited.add(grid.cell_of(*centre))
            trail.step = set(trail.visited)
            return trail
        step = grid.cells_along(trail.centre, centre)
        trail.visited |= step
        trail.step = step if trail.measured else trail.step | step
        trail.centre, trail.seen_s, trail.vehicle_class = centre, now, vehicle_class
        trail.frames += 1
        return trail

    @staticmethod
    def _add_motion(
        trail: _Trail, reference: tuple[float, float], age_s: float, box_px: float
    ) -> None:
        """Velocity over about the last second, credited to the cells of the last step; the
        first time, to every cell since the track began, so no stretch of road lacks one."""
        (x, y), (rx, ry) = trail.centre, reference
        velocity = ((x - rx) / age_s, (y - ry) / age_s)
        stopped = math.hypot(*velocity) / max(box_px, 1.0) < STOPPED_BOX_SIZES_PER_S
        trail.observe(velocity, stopped)
        trail.measured = True

    def _finish_stale(self, now: float) -> None:
        """Tally and forget tracks the tracker has let go of."""
        for track_id in [
            t for t, trail in self._trails.items() if trail.seen_s < now - STALE_TRACK_S
        ]:
            self._finish(self._trails.pop(track_id))

    def _finish(self, trail: _Trail) -> None:
        window = self._window
        if window is not None and trail.frames >= MIN_TRACK_FRAMES:
            window.add_vehicle(window.tallies, window.motions, trail)
            window.vehicles += 1

    def snapshot(
        self,
        camera_id: str,
        window_start: datetime,
        window_end: datetime,
        config_version: int | None,
    ) -> SceneMap:
        """The map of this window so far, live tracks included, at the finest resolution
        whose qualifying cells fit the contract (count and bytes); proposals computed from
        the map alone."""
        window = self._window or _Window.over(_Grid(1, 1, 1, 1))
        tallies = [tally.copy() for tally in window.tallies]
        motions = [motion.copy() for motion in window.motions]
        live = [t for t in self._trails.values() if t.frames >= MIN_TRACK_FRAMES]
        for trail in live:
            window.add_vehicle(tallies, motions, trail)
        k = self.settings.k
        levels = [
            (grid, tally, motion)
            for grid, tally, motion in zip(window.grids, tallies, motions, strict=True)
            if np.count_nonzero(tally.vehicles >= k) <= MAX_SCENE_CELLS
        ]
        for grid, tally, motion in levels:
            scene_map = SceneMap(
                camera_id=camera_id,
                config_version=config_version,
                window_start=window_start,
                window_end=window_end,
                analysed_s=round(min(self._analysed_s, 86_400.0), 3),
                frame_width=grid.width,
                frame_height=grid.height,
                cols=grid.cols,
                rows=grid.rows,
                k=k,
                vehicles=min(window.vehicles + len(live), MAX_VEHICLES),
                withheld_cells=int(np.count_nonzero((tally.vehicles > 0) & (tally.vehicles < k))),
                cells=_cells(grid, tally, motion, k),
                proposals=Proposals(lines=[], zones=[]),
            )
            if len(scene_map.model_dump_json()) <= MAX_CELLS_BYTES:
                break
        return scene_map.model_copy(update={"proposals": propose(scene_map)})


def _cells(grid: _Grid, tally: _Tally, motion: _Motion, k: int) -> list[SceneCell]:
    """The cells seen by at least ``k`` vehicles, in the contract's units and bounds; a class
    seen by fewer than ``k`` of them reads as 0."""
    cells = []
    for index in np.flatnonzero(tally.vehicles >= k).tolist():
        row, col = divmod(index, grid.cols)
        moving = max(motion.moving[index], 1.0)
        cells.append(
            SceneCell(
                c=col,
                r=row,
                n=min(int(tally.vehicles[index]), MAX_SCENE_COUNT),
                vx=_bounded_speed(motion.vx[index] / moving),
                vy=_bounded_speed(motion.vy[index] / moving),
                s=round(float(motion.stopped[index] / max(motion.observed[index], 1.0)), 2),
                k=[min(int(n), MAX_SCENE_COUNT) if n >= k else 0 for n in tally.classes[index]],
            )
        )
    return cells


def _bounded_speed(value: float) -> int:
    return int(min(max(round(value), -MAX_SPEED_PX_S), MAX_SPEED_PX_S))
