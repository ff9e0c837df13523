"""Model runtimes behind the detect stage, each adapted to one currency (``RawBoxes``).

- ``UltralyticsYolo``: Ultralytics' own predictor (PyTorch weights, any device).
- ``OpenVinoYolo``: an Ultralytics OpenVINO export run with OpenVINO alone. Without torch
  a worker with a cached export starts seconds sooner and spends less per frame around
  the model. It reproduces Ultralytics' predictor at a fixed input size step for step:
  centred letterbox (grey 114, linear resize), BGR -> RGB, 0..1 scaling, best class per
  box, class filter, NMS across classes at IoU 0.7, at most 300 boxes, boxes mapped back;
  ``tests/detector/test_detect.py`` checks the two against each other on real frames.

Both may be called from several camera threads at once. OpenVINO then runs up to
``streams`` inferences in parallel (one CPU stream each, as its THROUGHPUT mode plans them),
which keeps both cores busy where one inference alone leaves part of them idle, and gives
bit-for-bit the boxes of one inference at a time (``tests/detector/test_shared_detect.py``).
Ultralytics' predictor is not thread-safe and runs one image at a time.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt
import yaml

from detector.currency import FloatArray, IntArray

IOU_THRESHOLD = 0.7
MAX_DETECTIONS = 300
PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class RawBoxes:
    """Model output in the pixels it was given: boxes, confidences and COCO class ids."""

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray


class YoloRuntime(Protocol):
    """What the detect stage needs of a model: boxes of the wanted classes in one image."""

    def predict(
        self, image: npt.NDArray[np.uint8], confidence: float, class_ids: list[int]
    ) -> RawBoxes: ...


class UltralyticsYolo:
    """Ultralytics' predictor at a fixed inference size, with saving and showing off."""

    def __init__(self, model: Any, input_hw: tuple[int, int], device: str) -> None:
        self._model = model
        self.input_hw = input_hw
        self._device = device
        self._one_at_a_time = threading.Lock()

    def predict(
        self, image: npt.NDArray[np.uint8], confidence: float, class_ids: list[int]
    ) -> RawBoxes:
        with self._one_at_a_time:
            return self._predict(image, confidence, class_ids)

    def _predict(
        self, image: npt.NDArray[np.uint8], confidence: float, class_ids: list[int]
    ) -> RawBoxes:
        boxes = self._model.predict(
            image,
            imgsz=list(self.input_hw),
            conf=confidence,
            classes=class_ids,
            agnostic_nms=True,
            device=self._device,
            verbose=False,
            save=False,
            show=False,
        )[0].boxes
        return RawBoxes(
            boxes.xyxy.cpu().numpy().astype(np.float32),
            boxes.conf.cpu().numpy().astype(np.float32),
            boxes.cls.cpu().numpy().astype(np.int64),
        )


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image of ``image_hw`` is scaled to ``resized_wh`` and padded into the model's
    ``input_hw``, to map boxes back."""

    image_hw: tuple[int, int]
    input_hw: tuple[int, int]
    resized_wh: tuple[int, int]
    pad_x: int
    pad_y: int

    @classmethod
    def fit(cls, image_hw: tuple[int, int], input_hw: tuple[int, int]) -> Letterbox:
        """Ultralytics' rule: one scale for both axes, each side rounded, padding centred."""
        (h, w), (in_h, in_w) = image_hw, input_hw
        ratio = min(in_h / h, in_w / w)
        new_w, new_h = max(round(w * ratio), 1), max(round(h * ratio), 1)
        pad_x, pad_y = round((in_w - new_w) / 2 - 0.1), round((in_h - new_h) / 2 - 0.1)
        return cls(image_hw, input_hw, (new_w, new_h), pad_x, pad_y)

    @property
    def gain_x(self) -> float:
        return self.resized_wh[0] / self.image_hw[1]

    @property
    def gain_y(self) -> float:
        return self.resized_wh[1] / self.image_hw[0]

    def apply(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        new_w, new_h = self.resized_wh
        if (new_h, new_w) != self.image_hw:
            image = cv2.resize(image, self.resized_wh, interpolation=cv2.INTER_LINEAR)
        canvas = np.full((*self.input_hw, 3), PAD_VALUE, dtype=np.uint8)
        canvas[self.pad_y : self.pad_y + new_h, self.pad_x : self.pad_x + new_w] = image
        return canvas

    def unapply(self, xyxy: FloatArray) -> FloatArray:
        pad = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        gain = np.array([self.gain_x, self.gain_y, self.gain_x, self.gain_y], np.float32)
        h, w = self.image_hw
        boxes: FloatArray = np.clip((xyxy - pad) / gain, 0, [w, h, w, h]).astype(np.float32)
        return boxes


class OpenVinoYolo:
    """A YOLO detection export compiled by OpenVINO for one fixed input size (h, w): static
    shapes let the CPU plugin plan every layer once. ``streams`` inferences may run at once
    (1: one inference on every core, the fastest for a single camera). The compiled model is
    cached beside the export (``compiled/``), which takes a few tenths of a second off every
    later start."""

    def __init__(self, export_dir: Path, input_hw: tuple[int, int], streams: int = 1) -> None:
        import openvino as ov

        core = ov.Core()
        xml = next(export_dir.glob("*.xml"))
        model = core.read_model(model=str(xml), weights=str(xml.with_suffix(".bin")))
        require_raw_head(model.output(0).get_partial_shape(), class_count(export_dir))
        model.reshape([1, 3, *input_hw])
        self.input_hw = input_hw
        plan = (
            {"PERFORMANCE_HINT": "LATENCY"}
            if streams == 1
            else {  # unpinned: the camera threads and whatever else runs there share the cores
                "PERFORMANCE_HINT": "THROUGHPUT",
                "NUM_STREAMS": str(streams),
                "ENABLE_CPU_PINNING": "NO",
            }
        )
        plan["CACHE_DIR"] = str(export_dir.parent / "compiled")
        self._compiled: Any = core.compile_model(model, "CPU", plan)
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(streams):
            self._idle.put(self._compiled.create_infer_request())

    def predict(
        self, image: npt.NDArray[np.uint8], confidence: float, class_ids: list[int]
    ) -> RawBoxes:
        """Boxes of the wanted classes in ``image`` pixels (BGR in, as OpenCV decodes)."""
        letterbox = Letterbox.fit((image.shape[0], image.shape[1]), self.input_hw)
        canvas = letterbox.apply(image)
        tensor = np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1)[None], np.float32)
        tensor /= 255
        request = self._idle.get()  # waits while every stream is busy
        try:  # outputs are copied out of the request before it serves another thread
            output = request.infer({0: tensor}, share_inputs=True)[0][0]  # (4 + classes, anchors)
        finally:
            self._idle.put(request)
        raw = select_boxes(output, confidence, class_ids)
        return RawBoxes(letterbox.unapply(raw.xyxy), raw.confidence, raw.class_id)


def class_count(export_dir: Path) -> int:
    """How many classes the export's metadata names."""
    metadata = yaml.safe_load((export_dir / "metadata.yaml").read_text(encoding="utf-8"))
    return len(metadata["names"])


def require_raw_head(shape: Any, classes: int) -> None:
    """Ultralytics exports the raw head (boxes and class scores per anchor, NMS outside) by
    default; an NMS-free or NMS-embedded export has another layout, which is refused here
    so the detector falls back to Ultralytics' own predictor instead of misreading it."""
    rows = shape[1] if shape.rank.is_static and shape.rank.get_length() == 3 else None
    if rows is None or rows.is_dynamic or rows.get_length() != 4 + classes:
        raise ValueError(f"OpenVINO export output {shape} is not (batch, 4 + {classes}, anchors)")


def select_boxes(output: FloatArray, confidence: float, class_ids: list[int]) -> RawBoxes:
    """Best class per anchor, confidence and class filter, then NMS across classes, as
    Ultralytics' ``agnostic_nms=True`` does: a van scored as car here and truck there must
    stay one box, or the tracker would follow it twice and count it twice."""
    scores = output[4:]
    best = scores.argmax(0)
    best_score = scores[best, np.arange(scores.shape[1])]
    keep = (best_score > confidence) & np.isin(best, class_ids)
    cx, cy, w, h = output[:4, keep]
    xywh = np.column_stack((cx - w / 2, cy - h / 2, w, h))
    kept_scores, kept_classes = best_score[keep], best[keep]
    nms_kept = cv2.dnn.NMSBoxes(xywh.tolist(), kept_scores.tolist(), confidence, IOU_THRESHOLD)
    chosen = np.asarray(nms_kept, dtype=np.int64).reshape(-1)[:MAX_DETECTIONS]
    xyxy = np.column_stack((xywh[:, :2], xywh[:, :2] + xywh[:, 2:]))
    return RawBoxes(
        xyxy[chosen].astype(np.float32),
        kept_scores[chosen].astype(np.float32),
        kept_classes[chosen].astype(np.int64),
    )
