"""Edge worker vs Ultralytics' ObjectCounter vs decode-only OpenCV, on the reference clips.

One run, same machine, same clips: frames/s of each, the ratios, and the count error of
both counters against ../shared/data/video/reference_counts.json. Not a test: run it with
``python bench/bench_detector.py`` and put the table in the issue note.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TALLY_SHARED") or REPO.parent / "shared")
VIDEO = SHARED / "data" / "video"
MODEL = SHARED / "models" / "yolo26n_dq.pt"
VEHICLE_IDS = [1, 2, 3, 5, 7]


def decode_only(clip: Path) -> float:
    capture = cv2.VideoCapture(str(clip))
    frames, started = 0, time.perf_counter()
    while capture.grab():
        capture.retrieve()
        frames += 1
    return frames / (time.perf_counter() - started)


def steady_fps(frames: int, seconds: float, startup: float) -> float:
    """Frames/s after the first frame, which loads and warms the model up in both counters."""
    return (frames - 1) / max(seconds - startup, 1e-9)


def object_counter(clip: Path, line: list[int]) -> tuple[int, float, float]:
    """Ultralytics' own line counter with its defaults (imgsz 640), one line per instance.
    Returns the count, the whole-run frames/s and the steady-state frames/s."""
    from ultralytics import solutions

    counter = solutions.ObjectCounter(
        model=str(MODEL),
        region=[(line[0], line[1]), (line[2], line[3])],
        classes=VEHICLE_IDS,
        show=False,
        verbose=False,
    )
    capture = cv2.VideoCapture(str(clip))
    frames, started, startup = 0, time.perf_counter(), 0.0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        counter(image)
        frames += 1
        if frames == 1:
            startup = time.perf_counter() - started
    seconds = time.perf_counter() - started
    return (
        counter.in_count + counter.out_count,
        frames / seconds,
        steady_fps(frames, seconds, startup),
    )


def tally(clip: Path, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Our worker's engine through its CLI (a warm model cache, as on a running device)."""
    args = ["--line=" + ",".join(map(str, line["coords"])) + "," + line["name"] for line in lines]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "detector",
            "count",
            "--source",
            str(clip),
            "--model",
            str(MODEL),
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def main() -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    reference = json.loads((VIDEO / "reference_counts.json").read_text(encoding="utf-8"))
    rows = []
    for name, entry in reference.items():
        clip = VIDEO / name
        lines = entry["lines"]
        tally(clip, lines)  # warm the OpenVINO export cache for this clip's size
        ours = tally(clip, lines)
        decode_fps = decode_only(clip)
        ours_steady = ours["fps"]  # `count` times the model's start-up separately
        ours_whole = ours["frames"] / (ours["seconds"] + ours["startup_seconds"])
        for line in lines:
            truth = sum(d["total"] for d in line["counts"].values())
            oc_count, oc_fps, oc_steady = object_counter(clip, line["coords"])
            rows.append(
                (
                    name,
                    line["name"],
                    truth,
                    ours["lines"][line["name"]]["total"],
                    oc_count,
                    ours_whole,
                    oc_fps,
                    ours_steady,
                    oc_steady,
                    decode_fps,
                )
            )
    header = (
        "clip | line | ref | tally | objcounter | tally fps | oc fps | speed-up"
        " | tally steady fps | oc steady fps | steady speed-up | decode fps"
    )
    print(header)
    for row in rows:
        print(
            " | ".join(map(str, row[:5]))
            + f" | {row[5]:.1f} | {row[6]:.1f} | {row[5] / row[6]:.2f}x"
            + f" | {row[7]:.1f} | {row[8]:.1f} | {row[7] / row[8]:.2f}x | {row[9]:.0f}"
        )
    truth_all = sum(r[2] for r in rows)
    print(
        f"total: reference {truth_all}, tally {sum(r[3] for r in rows)} "
        f"(error {abs(sum(r[3] for r in rows) - truth_all) / truth_all:.1%}), "
        f"ObjectCounter {sum(r[4] for r in rows)} "
        f"(error {abs(sum(r[4] for r in rows) - truth_all) / truth_all:.1%})"
    )


if __name__ == "__main__":
    main()
