"""Our numpy ByteTrack gives exactly Ultralytics' tracks, frame by frame: on random traffic
(Hypothesis) and on the real model's boxes over the shared clips."""

from __future__ import annotations

import random
import subprocess
import sys
from argparse import Namespace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.site import ModelSettings
from detector.bytetrack import ByteTracker, ByteTrackSettings
from detector.currency import Frame, FrameMeta
from detector.detect import VehicleDetector
from detector.track import TrackerSettings
from tests.conftest import MODEL, REPO_ROOT, VIDEO

Boxes = npt.NDArray[np.float32]


class Twins:
    """Our tracker and Ultralytics' fed the same boxes; every frame must agree."""

    def __init__(self, buffer_frames: int) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker

        s = TrackerSettings()
        self.ours = ByteTracker(
            ByteTrackSettings(
                s.high_threshold,
                s.low_threshold,
                s.new_track_threshold,
                s.match_threshold,
                buffer_frames,
            )
        )
        self.theirs: Any = BYTETracker(
            Namespace(
                track_high_thresh=s.high_threshold,
                track_low_thresh=s.low_threshold,
                new_track_thresh=s.new_track_threshold,
                track_buffer=buffer_frames,
                match_thresh=s.match_threshold,
                fuse_score=False,
            )
        )
        self.rows = 0

    def step(self, xyxy: Boxes, confidence: Boxes) -> None:
        from ultralytics.engine.results import Boxes as UltralyticsBoxes

        ours = self.ours.update(xyxy, confidence)
        data = np.column_stack((xyxy, confidence, np.zeros(len(confidence), np.float32)))
        theirs = self.theirs.update(UltralyticsBoxes(data.reshape(-1, 6), (720, 1280)))
        theirs = theirs.reshape(-1, 8)[:, [0, 1, 2, 3, 4, 5, 7]]  # without the class column
        np.testing.assert_array_equal(ours, theirs)
        held = self.theirs.tracked_stracks + self.theirs.lost_stracks
        assert self.ours.held_track_ids() == {t.track_id for t in held}
        unsettled = [t for t in self.theirs.tracked_stracks if not t.is_activated]
        unsettled += self.theirs.lost_stracks
        expected = np.asarray([t.xyxy for t in unsettled], np.float32).reshape(-1, 4)
        np.testing.assert_array_equal(self.ours.unsettled_boxes(), expected)
        self.rows += len(ours)


vehicles = st.lists(
    st.tuples(
        st.floats(0, 1200),  # x
        st.floats(0, 700),  # y
        st.floats(-30, 30),  # dx per frame
        st.floats(-30, 30),  # dy per frame
        st.floats(0, 150),  # width (0: a degenerate box)
        st.floats(1, 150),  # height
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(
    vehicles,
    st.integers(1, 60),
    st.integers(1, 45),
    st.integers(0, 2**32 - 1),
)
def test_random_traffic_is_tracked_exactly_as_ultralytics_does(
    fleet: list[tuple[float, ...]], frames: int, buffer_frames: int, seed: int
) -> None:
    """Vehicles that move, jitter, vanish for a while, score around every threshold, plus
    clutter boxes: the same tracks, ids, boxes and scores, and the same held set."""
    twins = Twins(buffer_frames)
    rng = random.Random(seed)
    for frame in range(frames):
        boxes, scores = [], []
        for x, y, dx, dy, w, h in fleet:
            if rng.random() < 0.25:
                continue  # missed this frame
            cx, cy = x + dx * frame + rng.gauss(0, 2), y + dy * frame + rng.gauss(0, 2)
            boxes.append((cx, cy, cx + w * rng.uniform(0.9, 1.1), cy + h * rng.uniform(0.9, 1.1)))
            scores.append(rng.choice([0.04, 0.05, 0.1, 0.2, 0.21, 0.5, 0.9, rng.random()]))
        if rng.random() < 0.3:
            x, y = rng.uniform(0, 1200), rng.uniform(0, 700)
            boxes.append((x, y, x + 25, y + 25))
            scores.append(rng.uniform(0, 0.4))
        twins.step(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32))


def clip_boxes(name: str, frames: int, width: int | None = None) -> list[tuple[Boxes, Boxes]]:
    """The real detector's boxes for the first frames of a clip (optionally shrunk)."""
    detector = VehicleDetector(ModelSettings(), str(MODEL))
    capture = cv2.VideoCapture(str(VIDEO / name))
    result = []
    for index in range(frames):
        ok, image = capture.read()
        assert ok
        if width:
            height = round(image.shape[0] * width / image.shape[1])
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        meta = FrameMeta(index, index / 25, image.shape[1], image.shape[0])
        detections = detector.detect(Frame(meta, image))
        result.append((detections.xyxy, detections.confidence))
    capture.release()
    return result


@pytest.mark.parametrize(
    ("clip", "width"),
    [
        ("motorway_cctv_twoway_320x240.avi", None),
        ("freeway_approaching_1280x720.mp4", 160),  # the smallest cameras: flicker, weak boxes
        ("urban_intersection_640x480.mp4", None),  # turning, queuing and parked vehicles
    ],
)
def test_real_traffic_is_tracked_exactly_as_ultralytics_does(clip: str, width: int | None) -> None:
    twins = Twins(buffer_frames=38)
    for xyxy, confidence in clip_boxes(clip, 120, width):
        twins.step(xyxy, confidence)
    assert twins.rows > 200, "the clip should keep several vehicles tracked"


def test_tracking_imports_neither_torch_nor_ultralytics() -> None:
    """Why the port exists: the tracking stage must not cost a worker torch's memory."""
    script = (
        "import sys; import detector.engine, detector.cli; "
        "assert not {'torch', 'ultralytics'} & set(sys.modules), 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True, timeout=120)
