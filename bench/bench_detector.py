"""Edge worker vs Ultralytics' ObjectCounter vs decode-only OpenCV, on the reference clips.

One run, same machine, same clips: frames/s of each, the ratios, and the count error of
both counters against ../shared/data/video/reference_counts.json. Not a test: run it with
``python bench/bench_detector.py`` and put the table in the issue note.

Both counters run as their own process, so three speeds are compared: ``process`` (the
wall clock of the whole command, Python start-up and imports included), ``whole`` (from
the first frame read, model loading included) and ``steady`` (after the first frame).
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

# run as a script from anywhere: the repository root holds the packages
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.counting import count_command

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


def object_counter(clip: Path, line: list[int]) -> dict[str, Any]:
    """Ultralytics' own line counter with its defaults (imgsz 640), one line per instance,
    in its own process like ours; returns its count and speeds."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, __file__, "objectcounter", str(clip), ",".join(map(str, line))],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_fps"] = result["frames"] / (time.perf_counter() - started)
    return result


def run_object_counter(clip: Path, line: list[int]) -> dict[str, Any]:
    """The child side of ``object_counter``: import, load, count, and print one JSON line."""
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
    return {
        "count": counter.in_count + counter.out_count,
        "frames": frames,
        "fps": frames / seconds,
        "steady_fps": steady_fps(frames, seconds, startup),
    }


def tally(clip: Path, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Our worker's engine through its CLI (a warm model cache, as on a running device)."""
    started = time.perf_counter()
    completed = subprocess.run(
        count_command(clip, lines, MODEL),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    result["process_fps"] = result["frames"] / (time.perf_counter() - started)
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
        ours_whole = ours["fps"]  # `count` times the whole source, model loading included
        ours_steady = steady_fps(ours["frames"], ours["seconds"], ours["startup_seconds"])
        for line in lines:
            truth = sum(d["total"] for d in line["counts"].values())
            oc = object_counter(clip, line["coords"])
            speeds = (
                (ours["process_fps"], oc["process_fps"]),
                (ours_whole, oc["fps"]),
                (ours_steady, oc["steady_fps"]),
            )
            ratios = [f"{a:.1f} / {b:.1f} = {a / b:.2f}x" for a, b in speeds]
            counted = ours["lines"][line["name"]]["total"]
            rows.append(
                (name, line["name"], truth, counted, oc["count"], *ratios, f"{decode_fps:.0f}")
            )
    print(
        "clip | line | ref | tally | objcounter | process fps tally / oc"
        " | whole fps tally / oc | steady fps tally / oc | decode fps"
    )
    for row in rows:
        print(" | ".join(map(str, row)))
    truth_all = sum(r[2] for r in rows)
    ours_all = sum(r[3] for r in rows)
    oc_all = sum(r[4] for r in rows)
    print(
        f"total: reference {truth_all}, tally {ours_all} "
        f"(error {abs(ours_all - truth_all) / truth_all:.1%}), "
        f"ObjectCounter {oc_all} (error {abs(oc_all - truth_all) / truth_all:.1%})"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["objectcounter"]:
        coords = [int(v) for v in sys.argv[3].split(",")]
        print(json.dumps(run_object_counter(Path(sys.argv[2]), coords)))
    else:
        main()
