"""The detect stage's model runtimes: OpenVINO alone must give exactly Ultralytics' boxes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from contract.site import ModelSettings
from detector.backends import Letterbox, OpenVinoYolo, UltralyticsYolo, select_boxes
from detector.currency import Frame, FrameMeta
from detector.detect import COCO_VEHICLE_IDS, VehicleDetector, inference_size
from tests.conftest import MODEL, REPO_ROOT, VIDEO

VEHICLE_IDS = list(COCO_VEHICLE_IDS)


@pytest.mark.parametrize(
    ("image_hw", "input_hw"),
    [
        ((720, 1280), (352, 640)),
        ((360, 640), (384, 640)),
        ((120, 160), (480, 640)),  # small frames are upscaled
        ((240, 320), (480, 640)),
        ((1080, 1920), (384, 640)),
        ((100, 50), (640, 320)),
        ((101, 333), (224, 640)),
        ((7, 999), (32, 640)),
    ],
)
def test_letterbox_matches_ultralytics(
    image_hw: tuple[int, int], input_hw: tuple[int, int]
) -> None:
    from ultralytics.data.augment import LetterBox

    image = np.zeros((*image_hw, 3), np.uint8)
    theirs = LetterBox(input_hw, auto=False, stride=32).get_params({"img": image})
    ours = Letterbox.fit(image_hw, input_hw)
    assert (ours.pad_x, ours.pad_y) == (theirs["left"], theirs["top"])
    new_w, new_h = theirs["new_unpad"]
    assert (ours.gain_x, ours.gain_y) == pytest.approx((new_w / image_hw[1], new_h / image_hw[0]))
    assert ours.apply(image).shape == (*input_hw, 3)


def test_a_box_maps_back_to_the_pixels_it_covered() -> None:
    image = np.zeros((240, 320, 3), np.uint8)
    image[100:140, 50:130] = 255
    box = Letterbox.fit((240, 320), (384, 640))
    canvas = box.apply(image)
    ys, xs = np.nonzero(canvas[:, :, 0] == 255)
    drawn = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    mapped = box.unapply(drawn)  # resizing blurs edges by under a source pixel
    np.testing.assert_allclose(mapped, [[50, 100, 130, 140]], atol=1)


AnchorRow = tuple[float, float, float, float, int, float]


def model_output(rows: list[AnchorRow]) -> npt.NDArray[np.float32]:
    """A raw (4 + 80, anchors) output: each row is a cx, cy, w, h box with one class score."""
    output = np.zeros((84, len(rows)), np.float32)
    for i, (cx, cy, w, h, class_id, score) in enumerate(rows):
        output[:4, i] = (cx, cy, w, h)
        output[4 + class_id, i] = score
    return output


def test_overlapping_boxes_of_one_class_keep_the_strongest() -> None:
    boxes = select_boxes(
        model_output([(100, 100, 40, 40, 2, 0.6), (102, 100, 40, 40, 2, 0.9)]), 0.05, VEHICLE_IDS
    )
    assert boxes.confidence.tolist() == pytest.approx([0.9])
    assert boxes.xyxy.tolist() == [[82.0, 80.0, 122.0, 120.0]]


def test_one_vehicle_scored_as_two_classes_stays_one_box() -> None:
    """A van as car here and truck there: two boxes would become two tracks, two counts."""
    boxes = select_boxes(
        model_output([(100, 100, 40, 40, 2, 0.6), (101, 100, 40, 40, 7, 0.5)]), 0.05, VEHICLE_IDS
    )
    assert boxes.class_id.tolist() == [2]


def test_two_vehicles_side_by_side_are_both_kept() -> None:
    boxes = select_boxes(
        model_output([(100, 100, 40, 40, 2, 0.6), (130, 100, 40, 40, 7, 0.5)]), 0.05, VEHICLE_IDS
    )
    assert sorted(boxes.class_id.tolist()) == [2, 7]


def test_a_box_whose_best_class_is_not_a_vehicle_is_dropped() -> None:
    output = model_output([(100, 100, 40, 40, 0, 0.8)])  # a person ...
    output[4 + 2, 0] = 0.3  # ... that also looks a little like a car
    assert len(select_boxes(output, 0.05, VEHICLE_IDS).confidence) == 0


def test_weak_boxes_and_unrequested_classes_are_dropped() -> None:
    output = model_output([(50, 50, 10, 10, 2, 0.04), (200, 200, 10, 10, 1, 0.9)])
    assert len(select_boxes(output, 0.05, [2, 3, 5, 7]).confidence) == 0


def test_at_most_300_boxes_are_returned() -> None:
    rows = [(float(20 * (i % 40)), float(20 * (i // 40)), 8.0, 8.0, 2, 0.5) for i in range(400)]
    assert len(select_boxes(model_output(rows), 0.05, VEHICLE_IDS).confidence) == 300


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def clip_frames(name: str, every: int, count: int) -> list[npt.NDArray[np.uint8]]:
    capture = cv2.VideoCapture(str(VIDEO / name))
    frames = []
    index = 0
    while len(frames) < count:
        ok, frame = capture.read()
        assert ok, f"{name} ended early"
        if index % every == 0:
            frames.append(frame)
        index += 1
    capture.release()
    return frames


def static_export(size: tuple[int, int], folder: Path) -> Path:
    """Ultralytics' own export at one fixed size, the reference its predictor runs as-is."""
    from ultralytics import YOLO

    weights = folder / MODEL.name
    shutil.copyfile(MODEL, weights)
    return Path(YOLO(str(weights)).export(format="openvino", imgsz=list(size), verbose=False))


@pytest.mark.parametrize(
    "clip", ["motorway_cctv_twoway_320x240.avi", "freeway_approaching_1280x720.mp4"]
)
def test_openvino_alone_gives_exactly_the_boxes_of_ultralytics(
    clip: str, cache_dir: Path, tmp_path: Path
) -> None:
    """Same boxes as Ultralytics' predictor on its own export, and the one cached export
    (free input size, fixed as it loads) computes exactly what the fixed-size export does."""
    from ultralytics import YOLO

    frames = clip_frames(clip, every=15, count=12)
    height, width = frames[0].shape[:2]
    size = inference_size(width, height, None)
    reference = static_export(size, tmp_path)
    theirs = UltralyticsYolo(YOLO(str(reference), task="detect"), size, "cpu")
    ours_on_reference = OpenVinoYolo(reference, size)
    detector = VehicleDetector(ModelSettings(cache_dir=cache_dir), str(MODEL))
    ours = OpenVinoYolo(detector._openvino_export(), size)
    boxes_seen = 0
    for frame in frames:
        b = theirs.predict(frame, 0.05, VEHICLE_IDS)
        order_b = np.argsort(-b.confidence)
        for a in (
            ours_on_reference.predict(frame, 0.05, VEHICLE_IDS),
            ours.predict(frame, 0.05, VEHICLE_IDS),
        ):
            order_a = np.argsort(-a.confidence)
            np.testing.assert_allclose(a.xyxy[order_a], b.xyxy[order_b], atol=1e-3)
            np.testing.assert_allclose(a.confidence[order_a], b.confidence[order_b], atol=1e-5)
            assert a.class_id[order_a].tolist() == b.class_id[order_b].tolist()
        boxes_seen += len(b.confidence)
    assert boxes_seen > 20, "the clip should give plenty of vehicles to compare"


def test_a_cached_export_runs_without_importing_torch(cache_dir: Path) -> None:
    """A worker restart with a cached export must not pay for torch (seconds of start-up)."""
    frame_file = cache_dir / "frame.npy"
    np.save(frame_file, clip_frames("motorway_cctv_twoway_320x240.avi", every=1, count=1)[0])
    settings = ModelSettings(cache_dir=cache_dir)
    VehicleDetector(settings, str(MODEL))._openvino_export()
    script = f"""
import sys, numpy as np
from contract.site import ModelSettings
from detector.currency import Frame, FrameMeta
from detector.currency import Frame, FrameMeta
from detector.detect import VehicleDetector
detector = VehicleDetector(ModelSettings(cache_dir={str(cache_dir)!r}), {str(MODEL)!r})
detections = detector.detect(Frame(FrameMeta(0, 0.0, 320, 240), np.load({str(frame_file)!r})))
assert len(detections) > 0 and detector.backend == "openvino"
assert "torch" not in sys.modules and "ultralytics" not in sys.modules, "torch was imported"
"""
    subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True, timeout=120)


def test_one_export_serves_every_inference_size(cache_dir: Path) -> None:
    detector = VehicleDetector(ModelSettings(cache_dir=cache_dir), str(MODEL))
    for width, height in [(320, 240), (1280, 720), (160, 120)]:
        frame = np.full((height, width, 3), 127, np.uint8)
        detector.detect(Frame(FrameMeta(0, 0.0, width, height), frame))
    assert detector.backend == "openvino"
    assert len(list(cache_dir.glob("*/*_openvino_model"))) == 1


def test_a_failed_export_falls_back_to_pytorch_unless_openvino_was_required(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unwritable = tmp_path / "not-a-folder"
    unwritable.write_text("a file where the model cache should be")
    frame = Frame(FrameMeta(0, 0.0, 320, 240), np.full((240, 320, 3), 127, np.uint8))
    fallback = VehicleDetector(ModelSettings(cache_dir=unwritable, imgsz=160), str(MODEL))
    fallback.detect(frame)
    assert fallback.backend == "torch"
    assert "OpenVINO export failed" in caplog.text
    strict = VehicleDetector(
        ModelSettings(cache_dir=unwritable, imgsz=160, backend="openvino"), str(MODEL)
    )
    with pytest.raises(NotADirectoryError, match="not-a-folder"):
        strict.detect(frame)


def test_an_export_of_another_layout_is_refused_and_pytorch_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An NMS-free (end-to-end) export would be misread as raw head output: refuse it."""
    from ultralytics import YOLO

    detector = VehicleDetector(ModelSettings(cache_dir=tmp_path, imgsz=160), str(MODEL))
    expected = detector._openvino_export()  # where the detector keeps its export
    shutil.rmtree(expected)
    YOLO(str(expected.parent / MODEL.name)).export(
        format="openvino", dynamic=True, nms=False, verbose=False
    )
    frame = clip_frames("motorway_cctv_twoway_320x240.avi", every=1, count=1)[0]
    detections = detector.detect(Frame(FrameMeta(0, 0.0, 320, 240), frame))
    assert detector.backend == "torch"
    assert "is not (batch, 4 + 80, anchors)" in caplog.text
    assert len(detections) > 0
