"""Detection stage: Frame -> Detections, with Ultralytics YOLO.

The frame is read here and nowhere after: the stage returns boxes only. Ultralytics'
saving, plotting, showing and telemetry are switched off. On CPU, a ``.pt`` model is
exported once (by Ultralytics) to an OpenVINO copy with a free input size and cached.
OpenVINO fixes it to each exact (rectangular) inference size as it loads and runs it
alone (``backends.OpenVinoYolo``): about twice as fast as PyTorch, and torch is never
imported. Any export failure falls back to PyTorch with a warning. Pixels outside the
region of interest (around the lines and zones) are cropped away before inference, so
they cost nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from contract import VehicleClass
from contract.site import ModelSettings
from detector.backends import OpenVinoYolo, UltralyticsYolo, YoloRuntime
from detector.currency import Detections, Frame

log = logging.getLogger(__name__)

COCO_VEHICLE_IDS: dict[int, VehicleClass] = {
    1: "bicycle",
    2: "car",
    3: "motorcycle",
    5: "bus",
    7: "truck",
}
"""COCO ids of the vehicle classes. ``person`` (0) is never requested from the model."""

STRIDE = 32
DEFAULT_LONG_SIDE = 640
CACHE_ENV = "TALLY_MODEL_CACHE"


def ultralytics_model(path: str) -> Any:
    """``YOLO(path)`` with telemetry off and Ultralytics' chatter off stdout (``count --json``
    owns stdout): every model Ultralytics loads, exports or fetches goes through here."""
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER, SETTINGS

    if SETTINGS.get("sync"):
        SETTINGS.update({"sync": False})
    LOGGER.setLevel(max(LOGGER.level, logging.WARNING))
    return YOLO(path, task="detect")


def decline_openvino_telemetry() -> None:
    """OpenVINO's converter collects usage telemetry unless its consent file says no; record
    the refusal the way its own ``opt_in_out --opt_out`` does, before any conversion."""
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:
        return
    checker = OptInChecker()
    if checker.check(enable_opt_in_dialog=False) != ConsentCheckResult.DECLINED:
        checker.update_result(ConsentCheckResult.DECLINED)


@dataclass(frozen=True, slots=True)
class Region:
    """A pixel rectangle of the frame that is analysed (x1, y1, x2, y2)."""

    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    @classmethod
    def around(
        cls, points: Sequence[tuple[float, float]], width: int, height: int, margin: float = 0.4
    ) -> Region:
        """Bounding box of the points grown by ``margin`` of the frame size, so vehicles are
        detected well before and after a line; the whole frame when cropping saves little."""
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        dx, dy = margin * width, margin * height
        region = cls(
            max(0, int(min(xs) - dx)),
            max(0, int(min(ys) - dy)),
            min(width, int(max(xs) + dx + 1)),
            min(height, int(max(ys) + dy + 1)),
        )
        if region.width * region.height > 0.8 * width * height:
            return cls(0, 0, width, height)
        return region


def inference_size(width: int, height: int, imgsz: int | None) -> tuple[int, int]:
    """(h, w) for the model: the long side scaled to ``imgsz`` (up or down), both multiples
    of the stride. Small frames are upscaled: distant cars at 320x240 need the pixels."""
    long_side = imgsz or DEFAULT_LONG_SIDE
    factor = long_side / max(width, height)
    h = max(STRIDE, round(height * factor / STRIDE) * STRIDE)
    w = max(STRIDE, round(width * factor / STRIDE) * STRIDE)
    return h, w


def model_cache_dir(configured: Path | None) -> Path:
    """Where exported model copies live: config, then TALLY_MODEL_CACHE, then ~/.cache/tally."""
    if configured:
        return configured
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "tally" / "models"


def usable_cores() -> int:
    """CPU cores this process may run on (a container's or ``taskset``'s share, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class VehicleDetector:
    """Runs YOLO on the region of interest of a frame and keeps vehicle boxes only.

    One detector serves every camera of a worker: ``detect`` may be called from several
    threads at once, and up to ``concurrency`` of them (at most one per usable core) are
    inferred in parallel. ``concurrency`` is the number of cameras sharing it.
    """

    def __init__(self, settings: ModelSettings, model_path: str, concurrency: int = 1) -> None:
        self.settings = settings
        self.model_path = model_path
        self.class_ids = [i for i, name in COCO_VEHICLE_IDS.items() if name in settings.classes]
        self.streams = max(1, min(concurrency, usable_cores()))
        self._models: dict[tuple[int, int], YoloRuntime] = {}
        self._loading = threading.Lock()
        self.backend = "torch"

    def detect(self, frame: Frame, region: Region | None = None) -> Detections:
        """Vehicle boxes in native frame pixels; the frame is not kept."""
        meta = frame.meta
        region = region or Region(0, 0, meta.width, meta.height)
        pixels = frame.image[region.y1 : region.y2, region.x1 : region.x2]
        size = inference_size(region.width, region.height, self.settings.imgsz)
        boxes = self._model(size).predict(pixels, self.settings.confidence, self.class_ids)
        xyxy = boxes.xyxy + np.array([region.x1, region.y1, region.x1, region.y1], np.float32)
        classes = tuple(COCO_VEHICLE_IDS[int(c)] for c in boxes.class_id)
        return Detections(meta, xyxy, boxes.confidence, classes)

    def _model(self, size: tuple[int, int]) -> YoloRuntime:
        with self._loading:  # cameras starting together load (and export) a size once
            if size not in self._models:
                self._models[size] = self._load(size)
                log.info(
                    "model %s loaded (%s) for %dx%d inference",
                    Path(self.model_path).name,
                    self.backend,
                    size[1],
                    size[0],
                )
            return self._models[size]

    def _load(self, size: tuple[int, int]) -> YoloRuntime:
        wants_openvino = self.settings.backend in ("auto", "openvino")
        if wants_openvino and self.model_path.endswith(".pt") and self.settings.device == "cpu":
            try:
                runtime = OpenVinoYolo(self._openvino_export(), size, self.streams)
                self.backend = "openvino"
                return runtime
            except Exception as exc:  # any export failure must leave a working (slower) worker
                if self.settings.backend == "openvino":
                    raise
                log.warning("OpenVINO export failed (%s); using PyTorch", exc)
        self.backend = "torch"
        return UltralyticsYolo(ultralytics_model(self.model_path), size, self.settings.device)

    def _openvino_export(self) -> Path:
        """Export once per weights into the cache, with a free input size so one export
        serves every camera; later starts reuse it and need neither Ultralytics nor torch."""
        source = self._weights_file()
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
        folder = model_cache_dir(self.settings.cache_dir) / f"{source.stem}-{digest}"
        target = folder / f"{source.stem}_openvino_model"
        if (target / "metadata.yaml").exists():
            return target
        decline_openvino_telemetry()
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(folder / "export.lock"):  # workers starting together export once
            if (target / "metadata.yaml").exists():
                return target
            weights = folder / source.name
            if not weights.exists():
                shutil.copyfile(source, weights)
            log.info("exporting %s to OpenVINO (once)", source.name)
            exported = ultralytics_model(str(weights)).export(
                format="openvino", dynamic=True, verbose=False
            )
        return Path(exported)  # beside the weights copy, named as ``target``; metadata last

    def _weights_file(self) -> Path:
        """The weights on disk; an official name is fetched by Ultralytics for online users."""
        source = Path(self.model_path)
        if source.exists():
            return source
        ultralytics_model(self.model_path)
        return Path(source.name)
