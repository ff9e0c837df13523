"""The analysis pacer: slower only while every tracked vehicle crawls, full rate at once
whenever anything moves fast or elsewhere (synthetic tracks); stop-and-go traffic made of
real clips, and one real car that stops or creeps across a line (real model)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import VehicleClass
from contract.site import ModelSettings
from detector.currency import FrameMeta, Tracks
from detector.detect import VehicleDetector
from detector.pacing import CALM_S, STEP_LIMIT, AnalysisPacer
from tests.conftest import MODEL, VIDEO
from tests.support.replay import (
    SAVINGS_OFF,
    Clip,
    count,
    empty_road,
    load_clip,
    stop_and_go,
    totals,
)

REFERENCE = json.loads((VIDEO / "reference_counts.json").read_text(encoding="utf-8"))
TOP_FPS = 30.0
BOX = 40.0  # box side, pixels
CAR: VehicleClass = "car"


def tracks_at(t: float, vehicles: dict[int, float]) -> Tracks:
    """Vehicles (id -> x of the box's left edge) as one frame's confirmed tracks."""
    ids = sorted(vehicles)
    boxes = np.array(
        [[vehicles[i], 100.0, vehicles[i] + BOX, 100.0 + BOX] for i in ids], np.float32
    ).reshape(-1, 4)
    return Tracks(FrameMeta(0, t, 640, 360), np.array(ids, np.int64), boxes, (CAR,) * len(ids))


def drive(
    pacer: AnalysisPacer,
    seconds: float,
    speeds: dict[int, float],
    start: float = 0.0,
    news: bool = False,
) -> list[int]:
    """Run the pacer over ``seconds`` of stream with vehicles moving at ``speeds`` (box sizes
    per second); returns the stride after each analysed frame."""
    strides = []
    for frame in range(round(seconds * TOP_FPS)):
        t = start + frame / TOP_FPS
        if pacer.due():
            pacer.observe(tracks_at(t, {i: v * BOX * t for i, v in speeds.items()}), news)
            strides.append(pacer.stride)
    return strides


def test_no_tracked_vehicle_means_the_full_rate() -> None:
    pacer = AnalysisPacer(TOP_FPS, 10)
    assert set(drive(pacer, 5, {})) == {1}


def test_queued_vehicles_slow_the_rate_to_the_minimum_after_a_calm_second() -> None:
    pacer = AnalysisPacer(TOP_FPS, 10)
    strides = drive(pacer, 4, {1: 0.0, 2: 0.1})
    assert strides[: round(CALM_S * TOP_FPS)] == [1] * round(CALM_S * TOP_FPS)
    assert strides[-1] == 3
    assert pacer.fps == 10


@pytest.mark.parametrize(
    ("box_sizes_per_s", "stride"),
    [
        (0.0, 3),
        (STEP_LIMIT * TOP_FPS / 3.1, 3),
        (STEP_LIMIT * TOP_FPS / 2.9, 2),
        (STEP_LIMIT * TOP_FPS / 2.1, 2),
        (STEP_LIMIT * TOP_FPS / 1.9, 1),
        (6.0, 1),  # a motorway car: six box sizes a second
    ],
)
def test_the_stride_keeps_every_step_within_the_limit(box_sizes_per_s: float, stride: int) -> None:
    pacer = AnalysisPacer(TOP_FPS, 10)
    assert drive(pacer, 5, {1: box_sizes_per_s})[-1] == stride


def test_the_minimum_rate_bounds_the_stride() -> None:
    assert drive(AnalysisPacer(TOP_FPS, 15), 4, {1: 0.0})[-1] == 2
    assert drive(AnalysisPacer(TOP_FPS, TOP_FPS), 4, {1: 0.0}) == [1] * 120
    assert drive(AnalysisPacer(TOP_FPS, 60), 4, {1: 0.0}) == [1] * 120  # above the top: fixed


def test_a_new_vehicle_is_not_measured_until_it_was_seen_twice() -> None:
    """Its motion is unknown, so the motion probe watches it rather than ignoring it."""
    pacer = AnalysisPacer(TOP_FPS, 10)
    drive(pacer, 3, {1: 0.0})
    assert pacer.measured == {1}
    pacer.observe(tracks_at(3.0, {1: 0.0, 2: 300.0}), news=False)
    assert pacer.measured == {1}
    pacer.observe(tracks_at(3.1, {1: 0.0, 2: 300.0}), news=False)
    assert pacer.measured == {1, 2}


def test_news_brings_the_full_rate_back_at_once() -> None:
    """Motion besides the measured vehicles: a vehicle entering, or one new, unconfirmed
    or lost that moves."""
    pacer = AnalysisPacer(TOP_FPS, 10)
    drive(pacer, 3, {1: 0.0})
    assert pacer.stride == 3
    pacer.observe(tracks_at(3.0, {1: 0.0}), news=True)
    assert pacer.stride == 1
    assert drive(pacer, CALM_S * 0.9, {1: 0.0}, start=3.0) == [1] * round(CALM_S * 0.9 * TOP_FPS)


def test_motion_elsewhere_brings_the_full_rate_back_from_this_frame() -> None:
    pacer = AnalysisPacer(TOP_FPS, 10)
    drive(pacer, 3, {1: 0.0})
    assert [pacer.due() for _ in range(3)].count(True) == 1
    pacer.alarm(3.1)
    assert pacer.stride == 1
    assert [pacer.due() for _ in range(3)] == [True] * 3


def test_a_queue_that_moves_off_gets_the_full_rate_on_the_next_analysed_frame() -> None:
    """Stop and go: standing for three seconds, then six box sizes a second."""
    pacer = AnalysisPacer(TOP_FPS, 10)
    drive(pacer, 3, {1: 0.0})
    assert pacer.stride == 3
    moving = drive(pacer, 2, {1: 6.0}, start=3.0)
    assert moving[0] == 1
    assert set(moving) == {1}


def test_due_analyses_every_stride_th_frame() -> None:
    pacer = AnalysisPacer(TOP_FPS, 10)
    pacer.stride = 3
    assert [pacer.due() for _ in range(9)] == [False, False, True] * 3


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.integers(1, 6), st.floats(0, 8), max_size=4),
            st.booleans(),
            st.integers(1, 40),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_slower_rate_always_keeps_the_steps_just_measured_within_the_limit(
    phases: list[tuple[dict[int, float], bool, int]],
) -> None:
    """Whatever the traffic does, a stride above 1 is only chosen when every measured
    vehicle's step since the previous analysed frame, times the stride, stays within
    STEP_LIMIT box sizes; news or no vehicle at all always gets the full rate, and the
    stride never rises within CALM_S of either."""
    pacer = AnalysisPacer(TOP_FPS, 7.5)
    frame, positions = 0, dict[int, float]()
    last: dict[int, tuple[float, int]] = {}
    unsure_until, stride_before = CALM_S, 1
    for speeds, news, frames in phases:
        for _ in range(frames):
            frame += 1
            for vehicle, speed in speeds.items():
                positions[vehicle] = positions.get(vehicle, 0.0) + speed * BOX / TOP_FPS
            if not pacer.due():
                continue
            present = {v: positions[v] for v in speeds}
            pacer.observe(tracks_at(frame / TOP_FPS, present), news)
            assert 1 <= pacer.stride <= pacer.max_stride == 4
            if news or not present:
                unsure_until = frame / TOP_FPS + CALM_S
            if frame / TOP_FPS < unsure_until - 1e-9:
                assert pacer.stride == 1
            assert pacer.measured == present.keys() & last.keys()
            if present.keys() - last.keys():
                assert pacer.stride <= stride_before, "rose with a vehicle not measured yet"
            stride_before = pacer.stride
            steps = [
                abs(x - last[v][0]) / BOX / (frame - last[v][1])
                for v, x in present.items()
                if v in last
            ]
            assert pacer.stride == 1 or max(steps, default=0) * pacer.stride <= STEP_LIMIT + 1e-6
            last = {v: (x, frame) for v, x in present.items()}


@pytest.fixture(scope="module")
def detector() -> VehicleDetector:
    return VehicleDetector(ModelSettings(), str(MODEL))


@pytest.mark.parametrize(
    ("name", "width", "seconds"),
    [
        ("highway_720p.mp4", 640, 6.0),
        ("motorway_cctv_twoway_320x240.avi", None, 6.0),  # both directions, small vehicles
    ],
)
def test_stop_and_go_traffic_is_counted_exactly_at_a_lower_rate(
    name: str, width: int | None, seconds: float, detector: VehicleDetector
) -> None:
    """Every vehicle stops for 3 s after every 2 s of driving, wherever it is (some of them
    on a count line), then drives on: the engine analyses fewer frames while they stand and
    counts exactly what it counts analysing every frame."""
    clip = load_clip(VIDEO / name, REFERENCE[name]["lines"], width)
    clip = replace(clip, images=clip.images[: round(seconds * clip.fps)])
    images = stop_and_go(clip, go_s=2, stop_s=3)
    every_frame = count(clip, detector, images, **SAVINGS_OFF)
    paced = count(clip, detector, images)
    assert totals(every_frame)
    assert totals(paced) == totals(every_frame)
    assert paced.pipeline.frames_analysed < 0.85 * len(images)
    assert every_frame.pipeline.frames_analysed == len(images)
    assert [r.coverage for r in paced.reports] == [r.coverage for r in every_frame.reports]
    rates = [r.health.analysed_fps for r in paced.reports]
    assert all(rate is not None and clip.fps / 3 <= rate < clip.fps for rate in rates)


FREEWAY = "freeway_approaching_1280x720.mp4"
CAR_BOX = (354, 218, 409, 263)
"""A red car in frame 100 of the freeway clip at 640x360, a little before the count line
(y = 235 at that size), in a lane that crosses the line."""
STAND, STEP = "stand", 4.0
Leg = tuple[str | float, float, float]
"""(pixels per frame, or ``STAND`` or ``"empty"``; seconds for those; target centre y)."""


def centres(fps: float, legs: list[Leg]) -> list[float | None]:
    """The car's centre y per frame (None: no car in view) along ``legs``."""
    ys: list[float | None] = []
    for kind, seconds, target in legs:
        if kind == "empty":
            ys += [None] * round(seconds * fps)
        elif kind == STAND:
            ys += [ys[-1]] * round(seconds * fps)
        else:
            last = ys[-1] if ys else None
            start = target if last is None else last
            steps = max(1, round(abs(target - start) / float(kind)))
            ys += [start + (target - start) * (i + 1) / steps for i in range(steps)]
    return ys


def one_car(clip: Clip, legs: list[Leg]) -> list[npt.NDArray[np.uint8]]:
    """The real car, cut out, driven down its lane over the empty road (with sensor noise)."""
    road = empty_road(clip).astype(np.float32)
    x1, y1, x2, y2 = CAR_BOX
    car, height = clip.images[100][y1:y2, x1:x2], y2 - y1
    rng = np.random.default_rng(3)
    images = []
    for y in centres(clip.fps, legs):
        image = np.clip(road + rng.normal(0, 2, road.shape), 0, 255).astype(np.uint8)
        if y is not None:
            top = round(y - height / 2)
            image[top : top + height, x1:x2] = car
        images.append(image)
    return images


@pytest.fixture(scope="module")
def freeway() -> Clip:
    return load_clip(VIDEO / FREEWAY, REFERENCE[FREEWAY]["lines"][:1], width=640)


ARRIVES: list[Leg] = [("empty", 1, 0), (STEP, 0, 120)]
LEAVES: list[Leg] = [(STEP, 0, 330), ("empty", 2, 0)]


@pytest.mark.parametrize(
    "legs",
    [
        pytest.param([(STEP, 0, 225), (STAND, 4, 0)], id="stops-before-the-line"),
        pytest.param([(STEP, 0, 236), (STAND, 4, 0)], id="stops-on-the-line"),
        pytest.param(
            [(STEP, 0, 215), (STAND, 2, 0), (0.5, 0, 255), (STAND, 2, 0)], id="stops-twice"
        ),
        pytest.param([(STEP, 0, 200), (0.3, 0, 270)], id="creeps-across"),
    ],
)
def test_a_car_that_stops_or_creeps_then_moves_on_is_counted_once(
    legs: list[Leg], freeway: Clip, detector: VehicleDetector
) -> None:
    """Slow and stop-and-go traffic on its own: one car, counted once, by the engine with
    its savings (analysing fewer frames while the car stands or crawls, skipping the
    detector on the empty road) as by the engine analysing every frame."""
    images = one_car(freeway, ARRIVES + legs + LEAVES)
    once = {("main_carriageway", "down", "car"): 1}
    every_frame = count(freeway, detector, images, **SAVINGS_OFF)
    saving = count(freeway, detector, images)
    assert totals(every_frame) == totals(saving) == once
    assert saving.pipeline.frames_analysed < 0.85 * len(images)
    assert saving.pipeline.frames_detected < saving.pipeline.frames_analysed
    assert [r.coverage for r in saving.reports] == [r.coverage for r in every_frame.reports]
