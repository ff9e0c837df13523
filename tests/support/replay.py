"""Shared clips replayed through the real engine in memory, plain or made quiet or
stop-and-go, to compare the engine with its savings on and off. Nothing is written."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from contract import IntervalReport
from contract.camera import CountLine
from contract.site import Camera
from detector.currency import Frame, FrameMeta
from detector.detect import VehicleDetector
from detector.engine import CameraPipeline
from detector.source import PendingFrame

Image = npt.NDArray[np.uint8]
T0 = 1_772_438_400.0  # 2026-03-02 08:00 UTC
SAVINGS_OFF: dict[str, Any] = {"motion_gate": False, "min_analysis_fps": 120.0}
"""Camera fields that switch the motion gate and the adaptive rate off (the engine as it was)."""


@dataclass(frozen=True, slots=True)
class Clip:
    """A clip's frames in memory (shrunk to ``width`` if given), its rate and its lines."""

    images: list[Image]
    fps: float
    native: tuple[int, int]
    lines: list[CountLine]


def load_clip(path: Path, lines: Iterable[Mapping[str, Any]], width: int | None = None) -> Clip:
    """``lines`` as in reference_counts.json (``name``, ``coords`` in native pixels)."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    native = (
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    images = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if width and width < image.shape[1]:
            size = (width, round(image.shape[0] * width / image.shape[1]))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        images.append(image)
    capture.release()
    counted = [
        CountLine(name=line["name"], points=(tuple(line["coords"][:2]), tuple(line["coords"][2:])))
        for line in lines
    ]
    return Clip(images, fps, native, counted)


def empty_road(clip: Clip) -> Image:
    """The clip's background: the per-pixel median over the clip, moving vehicles gone."""
    sample = np.stack(clip.images[:: max(1, len(clip.images) // 60)])
    road: Image = np.median(sample, axis=0).astype(np.uint8)
    return road


def quiet(clip: Clip, busy_s: float, empty_s: float, noise: float = 2.0) -> list[Image]:
    """The clip cut into ``busy_s`` stretches with ``empty_s`` of empty road (with sensor
    noise) after each: a quiet street with a few bursts of traffic."""
    road = empty_road(clip).astype(np.float32)
    rng = np.random.default_rng(5)
    busy, empty = round(busy_s * clip.fps), round(empty_s * clip.fps)
    images: list[Image] = []
    for start in range(0, len(clip.images), busy):
        images += clip.images[start : start + busy]
        images += [
            np.clip(road + rng.normal(0, noise, road.shape), 0, 255).astype(np.uint8)
            for _ in range(empty)
        ]
    return images


def stop_and_go(clip: Clip, go_s: float, stop_s: float) -> list[Image]:
    """Every vehicle stands still for ``stop_s`` after every ``go_s`` of motion, then moves on
    at its speed: a queue at a light, frozen mid-motion wherever each vehicle was."""
    go, stop = round(go_s * clip.fps), round(stop_s * clip.fps)
    images: list[Image] = []
    for start in range(0, len(clip.images), go):
        stretch = clip.images[start : start + go]
        images += stretch + [stretch[-1]] * stop
    return images


def replayed(images: list[Image], fps: float) -> Iterator[PendingFrame]:
    for index, image in enumerate(images):
        height, width = image.shape[:2]
        meta = FrameMeta(index, T0 + index / fps, width, height)
        yield PendingFrame(meta, lambda meta=meta, image=image: Frame(meta, image))


def camera(clip: Clip, **fields: Any) -> Camera:
    """The camera `detector count` builds for the clip (every frame due), with ``fields``."""
    base = Camera(id="replay", source="replay", reference_resolution=clip.native, lines=clip.lines)
    return Camera.model_validate({**base.model_dump(), "max_detect_fps": 120, **fields})


@dataclass(frozen=True, slots=True)
class Replay:
    """A pipeline after a whole replay, and every interval report it produced."""

    pipeline: CameraPipeline
    reports: list[IntervalReport]


def count(
    clip: Clip, detector: VehicleDetector, images: list[Image] | None = None, **fields: Any
) -> Replay:
    """Replay ``images`` (default: the clip) through a camera with ``fields``, to the end."""
    pipeline = CameraPipeline(camera(clip, **fields), detector, clip.fps)
    reports = []
    for pending in replayed(clip.images if images is None else images, clip.fps):
        reports += pipeline.process(pending)
    return Replay(pipeline, reports + pipeline.finish())


def totals(replay: Replay) -> Counter[tuple[str, str, str]]:
    """Crossings per line, direction and class (zero rows dropped)."""
    return Counter({key: n for key, n in replay.pipeline.totals.items() if n})
