"""The camera pipeline around the real model, on synthetic frames (no traffic needed)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from contract.camera import CountLine
from contract.site import Camera, ModelSettings
from detector.currency import Frame, FrameMeta
from detector.detect import VehicleDetector
from detector.engine import CameraPipeline
from detector.source import PendingFrame, SourceError
from tests.conftest import MODEL

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()
CAMERA = Camera(
    id="cam-1", source="synthetic", lines=[CountLine(name="main", points=((0.1, 0.5), (0.9, 0.5)))]
)


@pytest.fixture(scope="module")
def detector() -> VehicleDetector:
    return VehicleDetector(ModelSettings(backend="torch", imgsz=160), str(MODEL))


def grey_frames(
    count: int, fps: float, size: tuple[int, int], decoded: list[int], start: int = 0
) -> Iterator[PendingFrame]:
    width, height = size
    for index in range(start, start + count):
        meta = FrameMeta(index, T0 + index / fps, width, height)

        def decode(meta: FrameMeta = meta) -> Frame:
            decoded.append(meta.index)
            return Frame(meta, np.full((meta.height, meta.width, 3), 127, dtype=np.uint8))

        yield PendingFrame(meta, decode)


def test_frames_beyond_max_detect_fps_are_never_decoded(detector: VehicleDetector) -> None:
    camera = CAMERA.model_copy(update={"max_detect_fps": 15.0})
    pipeline = CameraPipeline(camera, detector, stream_fps=60)
    decoded: list[int] = []
    for pending in grey_frames(120, 60, (320, 240), decoded):
        pipeline.process(pending)
    assert decoded == list(range(0, 120, 4))
    assert pipeline.frames_analysed == 30


def test_a_camera_that_changes_resolution_keeps_counting(detector: VehicleDetector) -> None:
    pipeline = CameraPipeline(CAMERA, detector, stream_fps=25)
    decoded: list[int] = []
    for pending in grey_frames(5, 25, (320, 240), decoded):
        pipeline.process(pending)
    for pending in grey_frames(5, 25, (640, 480), decoded, start=5):
        pipeline.process(pending)
    assert pipeline.frames_analysed == 10
    assert pipeline._geometry is not None
    assert pipeline._geometry.size == (640, 480)
    (report,) = pipeline.finish()
    assert report.frames_processed == 10
    assert report.counts == []  # an empty grey road: zero vehicles, with coverage to prove it
    assert report.coverage > 0


def test_an_undecodable_frame_is_skipped_not_fatal(detector: VehicleDetector) -> None:
    pipeline = CameraPipeline(CAMERA, detector, stream_fps=25)

    def broken() -> Frame:
        raise SourceError("frame 0 could not be decoded")

    assert pipeline.process(PendingFrame(FrameMeta(0, T0, 320, 240), broken)) == []
    decoded: list[int] = []
    for pending in grey_frames(3, 25, (320, 240), decoded, start=1):
        pipeline.process(pending)
    assert pipeline.frames_analysed == 3


@pytest.mark.parametrize(("gate", "detected"), [(True, 1), (False, 50)])
def test_an_empty_still_road_is_watched_without_running_the_detector(
    detector: VehicleDetector, gate: bool, detected: int
) -> None:
    """Nothing moves and nothing is tracked: the detector runs once, and every frame still
    counts as watched (coverage, frames) and as analysed at the stream rate."""
    pipeline = CameraPipeline(CAMERA.model_copy(update={"motion_gate": gate}), detector, 25)
    for pending in grey_frames(50, 25, (320, 240), []):
        pipeline.process(pending)
    assert (pipeline.frames_analysed, pipeline.frames_detected) == (50, detected)
    (report,) = pipeline.finish()
    assert report.frames_processed == 50
    assert report.coverage == pytest.approx(49 / 25 / CAMERA.interval_seconds, abs=1e-4)
    assert report.health.detection_share == detected / 50
    assert report.health.analysed_fps == pytest.approx(25)
