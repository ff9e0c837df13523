"""Counting accuracy when the reference clips are shrunk, in memory, to smaller cameras.

The held-out clips go down to 160x120, so the reference clips are replayed at 640, 320 and
160 pixels wide where that is smaller than the clip (aspect kept, lines scaled with them)
through the worker's own engine, and the counts are compared with the reference (the
total covers the lines shrunk to that width). Nothing is written: frames are resized in
memory and dropped like any other frame. Run ``python bench/bench_scales.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import cv2

from contract.camera import CountLine
from contract.site import Camera, ModelSettings
from detector.currency import Frame, FrameMeta
from detector.detect import VehicleDetector
from detector.engine import CameraPipeline
from detector.source import PendingFrame

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TALLY_SHARED") or REPO.parent / "shared")
VIDEO = SHARED / "data" / "video"
MODEL = SHARED / "models" / "yolo26n_dq.pt"
WIDTHS = (640, 320, 160)


def shrunk_frames(clip: Path, width: int) -> Iterator[PendingFrame]:
    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS)
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        height = round(image.shape[0] * width / image.shape[1])
        small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        meta = FrameMeta(index, index / fps, width, height)
        yield PendingFrame(meta, partial(Frame, meta, small))
        index += 1
    capture.release()


def clip_size_and_fps(clip: Path) -> tuple[tuple[int, int], float]:
    capture = cv2.VideoCapture(str(clip))
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return (width, height), fps


def line_points(coords: list[int]) -> tuple[tuple[float, float], tuple[float, float]]:
    x1, y1, x2, y2 = coords
    return (x1, y1), (x2, y2)


def count_at(clip: Path, lines: list[dict[str, Any]], width: int) -> dict[str, int]:
    """Totals per line with the clip shrunk to ``width`` (lines given in native pixels)."""
    native, fps = clip_size_and_fps(clip)
    camera = Camera(
        id="bench",
        source=str(clip),
        reference_resolution=native,
        lines=[CountLine(name=line["name"], points=line_points(line["coords"])) for line in lines],
        max_detect_fps=120,
    )
    pipeline = CameraPipeline(camera, VehicleDetector(ModelSettings(), str(MODEL)), fps)
    for pending in shrunk_frames(clip, width):
        pipeline.process(pending)
    totals = {line["name"]: 0 for line in lines}
    for (name, _direction, _class), n in pipeline.totals.items():
        totals[name] += n
    return totals


def main() -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    reference = json.loads((VIDEO / "reference_counts.json").read_text(encoding="utf-8"))
    lines = [(name, line) for name, entry in reference.items() for line in entry["lines"]]
    print("width | " + " | ".join(f"{name} {line['name']}" for name, line in lines) + " | total")
    truth = [sum(d["total"] for d in line["counts"].values()) for _name, line in lines]
    print("reference | " + " | ".join(map(str, truth)) + f" | {sum(truth)}")
    for width in WIDTHS:
        totals = {
            name: count_at(VIDEO / name, entry["lines"], width)
            for name, entry in reference.items()
            if clip_size_and_fps(VIDEO / name)[0][0] > width
        }
        pairs = [
            (totals[name][line["name"]] if name in totals else None, expected)
            for (name, line), expected in zip(lines, truth, strict=True)
        ]
        shrunk = [(c, t) for c, t in pairs if c is not None]
        error = sum(abs(c - t) for c, t in shrunk)
        cells = " | ".join("-" if c is None else str(c) for c, _t in pairs)
        print(
            f"{width} | {cells} | {sum(c for c, _t in shrunk)} of {sum(t for _c, t in shrunk)}"
            f" (abs error {error})"
        )


if __name__ == "__main__":
    main()
