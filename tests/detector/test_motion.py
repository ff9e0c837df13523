"""The motion probe: cheap, blind to noise, never blind to a vehicle (synthetic frames); the
motion gate on a quiet street made of a real clip (real model)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.site import ModelSettings
from detector.currency import Frame, FrameMeta
from detector.detect import Region, VehicleDetector
from detector.motion import CHANGE_LEVELS, PROBE_SIDE, MotionProbe
from tests.conftest import MODEL, VIDEO
from tests.support.replay import SAVINGS_OFF, Clip, count, load_clip, quiet, totals

Image = npt.NDArray[np.uint8]
REFERENCE = json.loads((VIDEO / "reference_counts.json").read_text(encoding="utf-8"))


def road(width: int, height: int, seed: int = 0, noise: float = 0.0) -> Image:
    """A textured grey road (a ramp plus speckle), optionally with sensor noise on top."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(70, 150, width, dtype=np.float32)[None, :].repeat(height, 0)
    texture = ramp + np.random.default_rng(99).normal(0, 6, (height, width))
    texture += rng.normal(0, noise, (height, width)) if noise else 0
    grey = np.clip(texture, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def with_vehicle(image: Image, box: tuple[int, int, int, int], contrast: int) -> Image:
    x1, y1, x2, y2 = box
    out = image.copy()
    patch = out[y1:y2, x1:x2].astype(np.int16) + contrast
    out[y1:y2, x1:x2] = np.clip(patch, 0, 255).astype(np.uint8)
    return out


def probe_after(reference: Image, region: Region | None = None) -> MotionProbe:
    """A probe that remembers ``reference`` as the frame the detector last ran on."""
    height, width = reference.shape[:2]
    probe = MotionProbe(region or Region(0, 0, width, height))
    probe.look(reference)
    probe.remember()
    return probe


def moved(probe: MotionProbe, image: Image, ignore: list[list[float]] | None = None) -> bool:
    probe.look(image)
    boxes = None if ignore is None else np.array(ignore, np.float32).reshape(-1, 4)
    return probe.moved(boxes)


@pytest.mark.parametrize(("width", "height"), [(160, 120), (320, 240), (640, 360), (1280, 720)])
def test_an_unchanged_road_with_sensor_noise_is_not_motion(width: int, height: int) -> None:
    probe = probe_after(road(width, height, seed=1, noise=3.0))
    assert not any(moved(probe, road(width, height, seed=s, noise=3.0)) for s in range(2, 12))


@pytest.mark.parametrize(
    ("width", "height", "box"),
    [
        (160, 120, (81, 61, 85, 64)),  # a 4x3 car far away on the smallest camera
        (320, 240, (10, 200, 14, 204)),
        (1280, 720, (600, 100, 616, 110)),  # 16x10 pixels in a 1280x720 frame
    ],
)
def test_a_small_vehicle_entering_an_empty_road_is_motion(
    width: int, height: int, box: tuple[int, int, int, int]
) -> None:
    empty = road(width, height)
    probe = probe_after(empty)
    assert not moved(probe, empty)
    assert moved(probe, with_vehicle(empty, box, contrast=-40))


def test_motion_is_measured_against_the_last_detected_frame_so_creeping_adds_up() -> None:
    """A dark car creeping 1 pixel per frame never differs much from the previous frame,
    but it soon differs from the frame the detector last saw."""
    empty = road(320, 240)
    creep = [with_vehicle(empty, (100 + d, 100, 140 + d, 120), contrast=-14) for d in range(8)]
    step_by_step = [moved(probe_after(before), after) for before, after in pairwise(creep)]
    assert not any(step_by_step), "each step alone is below the noise floor"
    probe = probe_after(creep[0])
    assert any(moved(probe, frame) for frame in creep[1:]), "the creep never showed"


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(40, 1920),
    aspect=st.floats(0.3, 1.5),
    fx=st.floats(0, 1),
    fy=st.floats(0, 1),
    contrast=st.sampled_from([CHANGE_LEVELS + 1, 30, 80, -CHANGE_LEVELS - 1, -30, -80]),
)
def test_any_vehicle_two_probe_pixels_wide_is_seen(
    width: int, aspect: float, fx: float, fy: float, contrast: int
) -> None:
    """The guarantee: a change of more than CHANGE_LEVELS over two probe pixels each way
    always covers one probe pixel whole, so it always reads as motion."""
    height = max(8, round(width * aspect))
    side = 2 * max(2.0, max(width, height) / PROBE_SIDE) + 1
    w, h = int(np.ceil(side)), int(np.ceil(side))
    x1, y1 = int(fx * (width - w)), int(fy * (height - h))
    empty = np.full((height, width, 3), 128, np.uint8)
    probe = probe_after(empty)
    assert moved(probe, with_vehicle(empty, (x1, y1, x1 + w, y1 + h), contrast))


def test_only_the_region_of_interest_is_watched() -> None:
    empty = road(640, 360)
    probe = probe_after(empty, Region(0, 180, 640, 360))
    assert not moved(probe, with_vehicle(empty, (300, 20, 340, 60), contrast=-60))
    assert moved(probe, with_vehicle(empty, (300, 220, 340, 260), contrast=-60))


def test_motion_near_a_tracked_vehicle_can_be_left_out() -> None:
    empty = road(640, 360)
    probe = probe_after(with_vehicle(empty, (300, 200, 340, 220), contrast=-60))
    nudged = with_vehicle(empty, (305, 200, 345, 220), contrast=-60)
    assert moved(probe, nudged)
    assert not moved(probe, nudged, ignore=[[300, 200, 340, 220]])
    newcomer = with_vehicle(nudged, (40, 40, 70, 60), contrast=-60)
    assert moved(probe, newcomer, ignore=[[300, 200, 340, 220]])


def test_without_a_remembered_frame_everything_is_motion() -> None:
    probe = MotionProbe(Region(0, 0, 320, 240))
    assert moved(probe, road(320, 240))
    disabled = MotionProbe(Region(0, 0, 320, 240), enabled=False)
    disabled.look(road(320, 240))
    disabled.remember()
    assert moved(disabled, road(320, 240)), "a disabled probe must never stop a detection"


def fastest_tenth(work: Callable[[], object], runs: int) -> float:
    """Seconds `work` takes on its fastest tenth of `runs`: what it costs, not how often
    another process took the core."""
    costs = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        costs.append(time.perf_counter() - started)
    return float(np.percentile(costs, 10))


def test_a_test_costs_a_tenth_of_a_detection_at_most(detector: VehicleDetector) -> None:
    """The gate must be far cheaper than what it saves, on any host: measured against a
    detection of the same frame in the same run."""
    frame = road(1280, 720, noise=3.0)
    probe = probe_after(frame)
    pixels = Frame(FrameMeta(0, 0.0, 1280, 720), frame)
    detector.detect(pixels)  # warm
    test_s = fastest_tenth(lambda: moved(probe, frame), 100)
    detection_s = fastest_tenth(lambda: detector.detect(pixels), 10)
    assert test_s < detection_s / 10, (test_s, detection_s)


@pytest.fixture(scope="module")
def detector() -> VehicleDetector:
    return VehicleDetector(ModelSettings(), str(MODEL))


@pytest.fixture(scope="module")
def highway() -> Clip:
    """The first 6 s of the highway clip at 640x360 (8 of its 14 reference vehicles)."""
    name = "highway_720p.mp4"
    clip = load_clip(VIDEO / name, REFERENCE[name]["lines"], width=640)
    return replace(clip, images=clip.images[: round(6 * clip.fps)])


def test_a_quiet_street_skips_most_detections_and_counts_every_vehicle(
    highway: Clip, detector: VehicleDetector
) -> None:
    """Bursts of real traffic between stretches of empty road: the gate spares the detector
    on over half the frames, every frame still counts as watched, and the counts are those
    of the engine without the gate."""
    images = quiet(highway, busy_s=3, empty_s=9)
    without = count(highway, detector, images, **SAVINGS_OFF)
    gated = count(highway, detector, images, min_analysis_fps=120.0)
    assert totals(without)
    assert totals(gated) == totals(without)
    assert gated.pipeline.frames_analysed == without.pipeline.frames_analysed == len(images)
    assert gated.pipeline.frames_detected < 0.5 * len(images)
    assert [r.coverage for r in gated.reports] == [r.coverage for r in without.reports]
    shares = [r.health.detection_share for r in gated.reports]
    assert sum(shares) < 0.5 * len(shares)
    assert all(r.health.detection_share == 1 for r in without.reports)
