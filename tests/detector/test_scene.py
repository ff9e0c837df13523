"""The scene learner: confirmed Tracks -> an aggregate, k-anonymous SceneMap.

Tracks come from a trajectory factory (vehicles driving straight lanes at a steady speed),
so no image and no model are needed; the invariants are checked with Hypothesis.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import VEHICLE_CLASSES, VehicleClass
from contract.scene import MAX_SCENE_CELLS, Proposals, SceneCell, SceneMap
from contract.site import SceneSettings
from detector.congestion import STALE_TRACK_S
from detector.currency import FrameMeta, Tracks
from detector.scene import SceneLearner

T0 = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
T1 = datetime(2025, 6, 2, 8, 5, tzinfo=UTC)
VGA = (640, 480)
Point = tuple[float, float]


@dataclass(frozen=True)
class Lane:
    """Vehicles driving from ``start`` to ``end`` (pixels) at ``speed`` px/s, one every
    ``headway`` seconds from ``first`` on, with boxes of ``box`` (w, h) pixels."""

    start: Point
    end: Point
    vehicles: int
    speed: float = 120.0
    headway: float = 2.0
    first: float = 0.0
    box: tuple[float, float] = (30.0, 24.0)
    vehicle_class: VehicleClass = "car"

    @property
    def duration(self) -> float:
        return math.dist(self.start, self.end) / self.speed

    @property
    def last_exit(self) -> float:
        return self.first + (self.vehicles - 1) * self.headway + self.duration

    def position(self, vehicle: int, t: float) -> Point | None:
        """Centre of one vehicle at time ``t``, or None while it is out of view."""
        s = (t - self.first - vehicle * self.headway) / self.duration
        if not 0 <= s <= 1:
            return None
        (x1, y1), (x2, y2) = self.start, self.end
        return x1 + s * (x2 - x1), y1 + s * (y2 - y1)


def parked(at: Point, vehicles: int, seconds: float) -> Lane:
    """Vehicles standing still at one place (all at once) for ``seconds``."""
    return Lane(at, (at[0] + 0.01, at[1]), vehicles, speed=0.01 / seconds, headway=0.0)


def drive(
    lanes: Sequence[Lane],
    size: tuple[int, int] = VGA,
    fps: float = 10.0,
    seconds: float | None = None,
    first_id: int = 1,
    start_s: float = 0.0,
) -> Iterator[Tracks]:
    """One ``Tracks`` per analysed frame of vehicles driving the lanes (ids unique)."""
    width, height = size
    end = seconds if seconds is not None else max(lane.last_exit for lane in lanes)
    ids = {}
    for lane_index, lane in enumerate(lanes):
        for vehicle in range(lane.vehicles):
            ids[(lane_index, vehicle)] = first_id + len(ids)
    for index in range(round(end * fps) + 1):
        t = index / fps
        track_ids, boxes, classes = [], [], []
        for lane_index, lane in enumerate(lanes):
            w, h = lane.box
            for vehicle in range(lane.vehicles):
                centre = lane.position(vehicle, t)
                if centre is None:
                    continue
                x, y = centre
                track_ids.append(ids[(lane_index, vehicle)])
                boxes.append((x - w / 2, y - h / 2, x + w / 2, y + h / 2))
                classes.append(lane.vehicle_class)
        yield Tracks(
            FrameMeta(index, start_s + t, width, height),
            np.array(track_ids, np.int64),
            np.array(boxes, np.float32).reshape(-1, 4),
            tuple(classes),
        )


def observe(learner: SceneLearner, frames: Iterable[Tracks]) -> SceneLearner:
    for tracks in frames:
        learner.observe(tracks)
    return learner


def learn(frames: Iterable[Tracks], scene: SceneSettings | None = None) -> SceneMap:
    """The map a fresh learner makes of these frames."""
    return observe(SceneLearner(scene or SceneSettings()), frames).snapshot("cam-1", T0, T1, 7)


def by_place(scene_map: SceneMap) -> dict[tuple[int, int], SceneCell]:
    return {(cell.c, cell.r): cell for cell in scene_map.cells}


# --- what a cell says ---------------------------------------------------------------------------


def test_cells_count_distinct_vehicles_and_withhold_those_seen_by_fewer_than_k() -> None:
    busy = Lane((0, 55), (640, 55), vehicles=4, speed=100)  # row 5 of 10-pixel cells
    quiet = Lane((0, 105), (640, 105), vehicles=2, speed=100)  # row 10
    scene_map = learn(drive([busy, quiet]))
    assert (scene_map.cols, scene_map.rows, scene_map.k) == (64, 48, 3)
    assert scene_map.cell_size() == (10.0, 10.0)
    assert sorted(by_place(scene_map)) == [(c, 5) for c in range(64)]
    assert scene_map.withheld_cells == 64
    assert scene_map.vehicles == 6
    for cell in scene_map.cells:
        assert (cell.n, cell.vx, cell.vy, cell.s) == (4, 100, 0, 0.0)
        assert cell.k == [0, 4, 0, 0, 0]
    assert (scene_map.camera_id, scene_map.config_version) == ("cam-1", 7)
    assert (scene_map.window_start, scene_map.window_end) == (T0, T1)


def test_a_vehicle_counts_once_in_a_cell_however_long_it_stays() -> None:
    """Also in the stopped share: the parked vehicle weighs as one of three, not as the
    hundreds of observations it made, so how long one vehicle stood cannot be read off."""
    standing = parked((305, 205), vehicles=1, seconds=60)
    passing = Lane((0, 205), (640, 205), vehicles=2, speed=100, first=5)
    cell = by_place(learn(drive([standing, passing], seconds=60)))[(30, 20)]
    assert cell.n == 3
    assert cell.s == pytest.approx(1 / 3, abs=0.02)


def test_mean_motion_weighs_each_vehicle_once_however_slow() -> None:
    """One slow vehicle spends ten times as long in each cell as two fast ones: per
    observation it would set the cell's motion alone (about 50 px/s); per vehicle the mean
    is (20 + 200 + 200) / 3."""
    slow = Lane((0, 205), (640, 205), vehicles=1, speed=20)
    fast = Lane((0, 205), (640, 205), vehicles=2, speed=200, first=2)
    cell = by_place(learn(drive([slow, fast], fps=25.0)))[(30, 20)]
    assert cell.n == 3
    assert cell.vx == pytest.approx(140, abs=3)
    assert cell.s == 0.0


def test_a_class_seen_by_fewer_than_k_vehicles_reads_as_zero() -> None:
    """Three cars and two buses through a cell: the cell is shown (five vehicles), the buses
    are not (two, below k), so no single bus can be told from the class mix."""
    cars = Lane((0, 205), (640, 205), vehicles=3)
    buses = Lane((0, 205), (640, 205), vehicles=2, vehicle_class="bus", first=7)
    scene_map = learn(drive([cars, buses]))
    assert scene_map.cells
    for cell in scene_map.cells:
        assert cell.n == 5
        assert dict(zip(VEHICLE_CLASSES, cell.k, strict=True))["bus"] == 0
        assert cell.k == [0, 3, 0, 0, 0]


def test_stopped_vehicles_are_stopped_observations_and_add_no_motion() -> None:
    standing = parked((305, 205), vehicles=3, seconds=20)
    cell = by_place(learn(drive([standing], seconds=20)))[(30, 20)]
    assert (cell.n, cell.s, cell.vx, cell.vy) == (3, 1.0, 0, 0)


def test_mean_motion_is_in_pixels_per_second_of_stream_time() -> None:
    down = Lane((305, 0), (305, 480), vehicles=3, speed=60, headway=1)
    for fps in (5.0, 25.0):
        cells = learn(drive([down], fps=fps)).cells
        assert cells
        assert {(cell.vx, cell.vy) for cell in cells} == {(0, 60)}


def test_the_class_mix_counts_each_vehicle_once_under_its_class() -> None:
    buses = Lane((0, 205), (640, 205), vehicles=3, vehicle_class="bus")
    bikes = Lane((305, 0), (305, 480), vehicles=3, speed=40, vehicle_class="bicycle", first=1)
    crossing = by_place(learn(drive([buses, bikes])))[(30, 20)]
    assert crossing.n == 6
    assert dict(zip(VEHICLE_CLASSES, crossing.k, strict=True)) == {
        "bicycle": 3,
        "car": 0,
        "motorcycle": 0,
        "bus": 3,
        "truck": 0,
    }


def test_a_track_seen_on_fewer_than_three_frames_is_a_flicker_not_a_vehicle() -> None:
    flicker = [
        Tracks(
            FrameMeta(i, i / 10, *VGA),
            np.array([i // 2 + 1], np.int64),  # a new id every second frame
            np.array([[300, 200, 330, 224]], np.float32),
            ("car",),
        )
        for i in range(40)
    ]
    scene_map = learn(flicker)
    assert (scene_map.vehicles, scene_map.cells, scene_map.withheld_cells) == (0, [], 0)


# --- bounds: k, size, grid ----------------------------------------------------------------------

lanes_strategy = st.lists(
    st.builds(
        Lane,
        start=st.tuples(st.floats(0, 640), st.floats(0, 480)),
        end=st.tuples(st.floats(0, 640), st.floats(0, 480)),
        vehicles=st.integers(1, 6),
        speed=st.floats(20, 400),
        headway=st.floats(0.2, 3),
        first=st.floats(0, 3),
        box=st.tuples(st.floats(4, 120), st.floats(4, 120)),
        vehicle_class=st.sampled_from(VEHICLE_CLASSES),
    ).filter(lambda lane: math.dist(lane.start, lane.end) > 5),
    min_size=1,
    max_size=6,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lanes=lanes_strategy, grid=st.integers(8, 96), k=st.integers(3, 6))
def test_no_cell_seen_by_fewer_than_k_vehicles_ever_appears(
    lanes: list[Lane], grid: int, k: int
) -> None:
    scene_map = learn(drive(lanes, fps=8), SceneSettings(grid=grid, k=k))
    assert SceneMap.model_validate_json(scene_map.model_dump_json()) == scene_map
    assert scene_map.k == k
    assert scene_map.vehicles <= sum(lane.vehicles for lane in lanes)
    for cell in scene_map.cells:
        assert k <= cell.n <= scene_map.vehicles
        assert sum(cell.k) <= cell.n
        assert all(n == 0 or n >= k for n in cell.k), "a class below k is withheld"
        assert 0 <= cell.s <= 1


@pytest.mark.parametrize(
    ("classes", "valid"),
    [
        ([0, 3, 0, 0, 0], True),
        ([0, 3, 3, 0, 0], True),
        ([0, 3, 2, 0, 0], False),
        ([1, 3, 0, 0, 0], False),
    ],
)
def test_the_contract_refuses_a_class_count_below_k(classes: list[int], valid: bool) -> None:
    empty = learn([])
    cell = SceneCell(c=0, r=0, n=6, vx=0, vy=0, s=0.0, k=classes)
    body = empty.model_dump(mode="json") | {"cells": [cell.model_dump(mode="json")]}
    if valid:
        assert SceneMap.model_validate(body).cells == [cell]
    else:
        with pytest.raises(ValueError, match="a class count below k must be withheld"):
            SceneMap.model_validate(body)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    grid=st.integers(8, 96),
    size=st.sampled_from([(320, 240), (1280, 720), (1920, 1080), (1000, 1000)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_message_stays_under_64_kib_for_any_grid(
    grid: int, size: tuple[int, int], seed: int
) -> None:
    """Dense traffic in every direction over the whole frame: the worst a map can be."""
    rng = np.random.default_rng(seed)
    width, height = size
    lanes = [
        Lane(
            (float(rng.uniform(0, width)), float(rng.uniform(0, height))),
            (float(rng.uniform(0, width)), float(rng.uniform(0, height))),
            vehicles=6,
            speed=max(width, height) / 4,
            headway=0.5,
            first=float(rng.uniform(0, 2)),
        )
        for _ in range(30)
    ]
    scene_map = learn(drive(lanes, size, fps=5), SceneSettings(grid=grid, k=3))
    assert len(scene_map.cells) <= MAX_SCENE_CELLS
    assert len(scene_map.model_dump_json().encode()) < 64 * 1024
    assert len(json.dumps(scene_map.model_dump(mode="json")).encode()) < 64 * 1024


def test_a_grid_with_too_many_qualifying_cells_is_halved_counting_vehicles_once() -> None:
    """Each vehicle passes two fine cells of one coarse cell: counted once there, not twice."""
    lanes = [
        Lane((0, 120 * i + 21), (960, 120 * i + 39), vehicles=3, speed=200, headway=0.5)
        for i in range(8)
    ]
    fine = learn(drive(lanes, (960, 960)), SceneSettings(grid=96, k=3))
    assert (fine.cols, fine.rows) == (48, 48)  # 8 x 97 fine cells would not fit
    assert {cell.n for cell in fine.cells} == {3}
    assert len(fine.cells) == 8 * 48
    assert fine.withheld_cells == 0


def test_the_grid_follows_the_frame_shape_and_the_setting() -> None:
    lane = Lane((0, 100), (1280, 100), vehicles=3, speed=400)
    scene_map = learn(drive([lane], (1280, 720)), SceneSettings(grid=32))
    assert (scene_map.cols, scene_map.rows) == (32, 18)
    assert (scene_map.frame_width, scene_map.frame_height) == (1280, 720)


# --- no id, position or path leaks --------------------------------------------------------------


def test_a_lone_vehicle_leaves_no_trace_and_no_id_reaches_the_map() -> None:
    road = Lane((0, 245), (640, 245), vehicles=5, speed=100)
    lone = Lane((105, 0), (105, 480), vehicles=1, speed=100, first=1)  # column 10
    with_ids = learn(drive([road, lone], first_id=987_654_300))
    relabelled = learn(drive([road, lone], first_id=1))
    assert with_ids == relabelled  # the map cannot depend on the tracker's ids
    text = with_ids.model_dump_json()
    assert "9876543" not in text
    assert with_ids.vehicles == 6
    assert {r for c, r in by_place(with_ids) if c == 10} == {24}  # only where it met the road
    assert set(json.loads(text)["cells"][0]) == {"c", "r", "n", "vx", "vy", "s", "k"}


# --- memory, windows and clocks -----------------------------------------------------------------


def test_memory_holds_only_vehicles_in_view_on_an_endless_stream() -> None:
    lane = Lane((0, 205), (640, 205), vehicles=200, speed=160, headway=1.0)
    learner = SceneLearner(SceneSettings())
    most = 0
    for tracks in drive([lane], seconds=lane.last_exit + 3):
        learner.observe(tracks)
        most = max(most, learner.live_tracks)
    assert most <= 5 + STALE_TRACK_S  # five in view, and the last ones of the past two seconds
    assert learner.live_tracks == 0
    assert learner.snapshot("cam-1", T0, T1, None).vehicles == 200


def test_reset_starts_a_fresh_window() -> None:
    learner = observe(SceneLearner(SceneSettings()), drive([Lane((0, 55), (640, 55), 4)]))
    learner.reset()
    assert learner.analysed_s == 0
    later = Lane((0, 405), (640, 405), 3)
    observe(learner, drive([later], first_id=100, start_s=100))
    scene_map = learner.snapshot("cam-1", T0, T1, None)
    assert {r for _, r in by_place(scene_map)} == {40}
    assert scene_map.vehicles == 3
    assert scene_map.analysed_s == pytest.approx(later.last_exit, abs=0.11)


def test_a_snapshot_mid_window_changes_nothing_that_follows() -> None:
    lanes = [Lane((0, 55), (640, 300), 5), Lane((640, 400), (0, 100), 4, first=1)]
    frames = list(drive(lanes))
    learner = observe(SceneLearner(SceneSettings()), frames[: len(frames) // 2])
    learner.snapshot("cam-1", T0, T1, None)
    observe(learner, frames[len(frames) // 2 :])
    assert learner.snapshot("cam-1", T0, T1, 7) == learn(frames)


def test_analysed_time_leaves_out_outages() -> None:
    lane = Lane((0, 55), (640, 55), 3)
    learner = observe(SceneLearner(SceneSettings()), drive([lane], seconds=10))
    assert learner.analysed_s == pytest.approx(10.0)
    observe(learner, drive([lane], seconds=10, first_id=100, start_s=40))  # 30 s without frames
    assert learner.analysed_s == pytest.approx(20.0)


def test_a_stream_that_starts_over_brings_new_vehicles_under_old_ids() -> None:
    lane = Lane((0, 55), (640, 55), 2)
    learner = observe(SceneLearner(SceneSettings()), drive([lane]))
    observe(learner, drive([lane]))  # same ids, time running from 0 again
    scene_map = learner.snapshot("cam-1", T0, T1, None)
    assert scene_map.vehicles == 4
    assert {cell.n for cell in scene_map.cells} == {4}


def test_a_new_frame_size_starts_learning_again() -> None:
    learner = observe(SceneLearner(SceneSettings()), drive([Lane((0, 55), (640, 55), 4)]))
    small = Lane((0, 100), (320, 100), 3, speed=60)
    observe(learner, drive([small], (320, 240), first_id=50, start_s=100))
    scene_map = learner.snapshot("cam-1", T0, T1, None)
    assert (scene_map.frame_width, scene_map.frame_height) == (320, 240)
    assert scene_map.vehicles == 3
    assert {cell.n for cell in scene_map.cells} == {3}


def test_an_empty_window_is_a_valid_empty_map() -> None:
    scene_map = SceneLearner(SceneSettings()).snapshot("cam-1", T0, T1, None)
    assert (scene_map.vehicles, scene_map.cells, scene_map.analysed_s) == (0, [], 0)
    assert scene_map.proposals.lines == []


def test_a_map_too_large_in_bytes_is_sent_coarser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The byte bound only bites with counts far beyond a five-minute window; a lower bound
    shows the same path."""
    lanes = [Lane((0, 40 * i + 25), (640, 40 * i + 45), 3, speed=200) for i in range(10)]
    fine = learn(drive(lanes))
    cells_only = fine.model_copy(update={"proposals": Proposals(lines=[], zones=[])})
    monkeypatch.setattr("detector.scene.MAX_CELLS_BYTES", len(cells_only.model_dump_json()) - 1)
    coarse = learn(drive(lanes))
    assert (coarse.cols, coarse.rows) == (fine.cols // 2, fine.rows // 2)
    assert len(coarse.cells) < len(fine.cells)


def test_a_reused_id_that_jumps_across_the_frame_is_another_vehicle() -> None:
    """A tracker rebuilt for a new set-up numbers its tracks from 1 again."""
    top = Lane((0, 55), (640, 55), 3, speed=160)
    bottom = Lane((0, 425), (640, 425), 3, speed=160)
    learner = observe(SceneLearner(SceneSettings()), drive([top], seconds=3.5))
    observe(learner, drive([bottom], first_id=1, start_s=3.6))  # ids 1-3 again, elsewhere
    scene_map = learner.snapshot("cam-1", T0, T1, None)
    assert scene_map.vehicles == 5  # two on top, three below: not one driving through the grass
    assert {r for _, r in by_place(scene_map)} == {42}
