"""One detector shared by several camera threads gives exactly the boxes of one inference at
a time (real frames, real model, real OpenVINO streams)."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from contract.site import ModelSettings
from detector.currency import Detections, Frame, FrameMeta
from detector.detect import Region, VehicleDetector, usable_cores
from tests.conftest import MODEL, VIDEO

CAMERAS = 4


def clip_frames(name: str, count: int, every: int = 10) -> list[Frame]:
    capture = cv2.VideoCapture(str(VIDEO / name))
    frames: list[Frame] = []
    index = 0
    while len(frames) < count:
        ok, image = capture.read()
        assert ok, f"{name} ended early"
        if index % every == 0:
            height, width = image.shape[:2]
            frames.append(Frame(FrameMeta(index, index / 25, width, height), image))
        index += 1
    capture.release()
    return frames


@pytest.fixture(scope="module")
def jobs() -> list[tuple[Frame, Region]]:
    """Frames of two cameras of different sizes, one of them cropped to a region."""
    motorway = [
        (f, Region(0, 0, 320, 240)) for f in clip_frames("motorway_cctv_twoway_320x240.avi", 8)
    ]
    freeway = [
        (f, Region(100, 200, 1180, 720)) for f in clip_frames("freeway_approaching_1280x720.mp4", 8)
    ]
    return motorway + freeway


def detect_all(
    detector: VehicleDetector, jobs: list[tuple[Frame, Region]], threads: int
) -> list[Detections]:
    """Every job's detections, the jobs shuffled over ``threads`` threads calling at once."""
    order = list(range(len(jobs))) * threads
    random.Random(7).shuffle(order)
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda i: (i, detector.detect(*jobs[i])), order))
    by_job: dict[int, list[Detections]] = {}
    for i, detections in results:
        by_job.setdefault(i, []).append(detections)
    for runs in by_job.values():  # every repeat of a job gave the same boxes
        for other in runs[1:]:
            assert_same(other, runs[0])
    return [by_job[i][0] for i in range(len(jobs))]


def assert_same(got: Detections, expected: Detections) -> None:
    np.testing.assert_array_equal(got.xyxy, expected.xyxy)
    np.testing.assert_array_equal(got.confidence, expected.confidence)
    assert got.vehicle_class == expected.vehicle_class


@pytest.mark.parametrize("backend", ["openvino", "torch"])
def test_concurrent_cameras_get_exactly_the_boxes_of_one_at_a_time(
    backend: str, jobs: list[tuple[Frame, Region]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = ModelSettings(backend=backend, cache_dir=tmp_path_factory.getbasetemp() / "models")
    alone = VehicleDetector(settings, str(MODEL))
    expected = [alone.detect(frame, region) for frame, region in jobs]
    shared = VehicleDetector(settings, str(MODEL), concurrency=CAMERAS)
    got = detect_all(shared, jobs, threads=CAMERAS)
    assert shared.backend == backend
    for g, e in zip(got, expected, strict=True):
        assert_same(g, e)
    assert sum(len(e) for e in expected) > 20, "the frames should hold plenty of vehicles"


def test_parallel_inference_is_bounded_by_the_cores(tmp_path: Path) -> None:
    settings = ModelSettings(cache_dir=tmp_path)
    assert VehicleDetector(settings, str(MODEL)).streams == 1
    assert VehicleDetector(settings, str(MODEL), concurrency=64).streams == usable_cores()
    assert VehicleDetector(settings, str(MODEL), concurrency=2).streams == min(2, usable_cores())


def cached_blobs(cache: Path) -> dict[Path, int]:
    """OpenVINO's compiled-model cache: each blob and when it was written."""
    return {blob: blob.stat().st_mtime_ns for blob in cache.glob("*/compiled/*")}


@pytest.mark.parametrize("cameras", [1, CAMERAS])
def test_a_compiled_model_from_the_cache_gives_the_same_boxes(
    cameras: int, jobs: list[tuple[Frame, Region]], tmp_path: Path
) -> None:
    """A later start reads the compiled model OpenVINO cached beside the export, for one
    camera or shared by several: the boxes are still those of one fresh inference at a time."""
    settings = ModelSettings(cache_dir=tmp_path)
    alone = VehicleDetector(settings, str(MODEL))
    expected = [alone.detect(frame, region) for frame, region in jobs]
    detect_all(VehicleDetector(settings, str(MODEL), concurrency=cameras), jobs, cameras)
    compiled = cached_blobs(tmp_path)
    assert compiled, "nothing was cached"
    again = VehicleDetector(settings, str(MODEL), concurrency=cameras)
    got = detect_all(again, jobs, threads=cameras)
    assert again.backend == "openvino"
    assert cached_blobs(tmp_path) == compiled, "the later start compiled anew"
    for g, e in zip(got, expected, strict=True):
        assert_same(g, e)
