"""N cameras in one worker process at real-time pace: today's engine against the one with
the motion gate, the adaptive analysis rate and the shared detector, in the same run.

Each camera replays a shared clip live: frame i appears at start + i / fps and waits at
most ``BUFFER_S`` for the worker (as a camera's stream buffer does), after which it is gone
(dropped). Clips wider than 640 pixels are shrunk to 640 (1280x720 -> 640x360), and the
frames are held JPEG-encoded in memory, so every camera pays a decode per frame as it would
for a stream; nothing is written. Cameras take the clips in turn (N = 8: each clip twice).

"today" is the engine as it was: every frame analysed, no gate, one detection at a time
behind a lock. "new" is the engine with its defaults and ``VehicleDetector(concurrency=N)``,
as the worker builds it.
For each N and engine it prints the frames/s each camera kept, whether every camera kept
real time (no frame dropped), the share of analysed frames (and of all frames) that ran the
detector, the CPU per camera, and each camera's counts against the reference and against a
single-camera run of the same engine over every frame. Then the memory and start-up of a
real worker with 8 cameras (``python -m detector run``), the import cost of ``count``, and
``bench_detector``'s table: ``detector count`` against Ultralytics' ObjectCounter.

Run ``python bench/bench_streams.py`` (minutes); ``--fps 25`` replays every clip at 25
frames/s (the issue's target cameras); ``--cameras 1,2 --seconds 10`` gives a quick look
(counts are then not compared with the reference); ``--no-worker`` and
``--no-objectcounter`` leave those runs out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_detector
from bench.bench_scales import line_points
from contract.camera import CountLine
from contract.site import Camera, ModelSettings
from detector.currency import Detections, Frame, FrameMeta
from detector.detect import Region, VehicleDetector
from detector.engine import CameraPipeline
from detector.source import PendingFrame
from tests.support.worker_memory import shared_clips, worker_peak_rss

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TALLY_SHARED") or REPO.parent / "shared")
VIDEO = SHARED / "data" / "video"
MODEL = SHARED / "models" / "yolo26n_dq.pt"
MAX_WIDTH = 640
BUFFER_S = 0.5
"""How long a frame waits for the worker before the stream drops it."""
T0 = 1_772_438_400.0  # 2026-03-02 08:00 UTC: the replayed streams' clock
WORKER_SECONDS = 40.0
"""How long the 8-camera worker runs before it is told to stop (its memory peaks early)."""

Totals = Counter[tuple[str, str, str]]


@dataclass(slots=True)
class Clip:
    """One shared clip, shrunk and JPEG-encoded in memory."""

    name: str
    native: tuple[int, int]
    size: tuple[int, int]
    fps: float
    jpegs: list[bytes]
    lines: Sequence[Mapping[str, Any]]
    reference: dict[str, int] | None
    """Per ``line/direction``: the hand count, when the clip has one."""


def load_clip(
    name: str, lines: Sequence[Mapping[str, Any]], seconds: float | None, fps: float | None
) -> Clip:
    capture = cv2.VideoCapture(str(VIDEO / name))
    fps = fps or capture.get(cv2.CAP_PROP_FPS)
    native = (
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    width = min(native[0], MAX_WIDTH)
    size = (width, round(native[1] * width / native[0]))
    jpegs: list[bytes] = []
    while seconds is None or len(jpegs) < seconds * fps:
        ok, image = capture.read()
        if not ok:
            break
        if size != native:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        jpegs.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
    capture.release()
    reference = None
    if seconds is None and all("counts" in line for line in lines):
        reference = {
            f"{line['name']}/{direction}": truth["total"]
            for line in lines
            for direction, truth in line["counts"].items()
        }
    return Clip(name, native, size, fps, jpegs, lines, reference)


def load_clips(seconds: float | None, fps: float | None) -> list[Clip]:
    reference = json.loads((VIDEO / "reference_counts.json").read_text(encoding="utf-8"))
    return [load_clip(name, lines, seconds, fps) for name, lines in shared_clips(reference)]


def camera_for(clip: Clip, index: int, engine: str) -> Camera:
    lines = [
        CountLine(name=line["name"], points=line_points(line["coords"])) for line in clip.lines
    ]
    camera = Camera(
        id=f"cam-{index}", source=clip.name, reference_resolution=clip.native, lines=lines
    )
    if engine == "today":
        return camera.model_copy(
            update={"motion_gate": False, "min_analysis_fps": camera.max_detect_fps}
        )
    return camera


def decoded(clip: Clip, index: int) -> PendingFrame:
    """Frame ``index`` as a stream hands it over: decoded (the grab), pixels on demand."""
    image = cv2.imdecode(np.frombuffer(clip.jpegs[index], np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{clip.name}: frame {index} does not decode")
    meta = FrameMeta(index, T0 + index / clip.fps, clip.size[0], clip.size[1])
    return PendingFrame(meta, lambda: Frame(meta, image))


def totals(pipeline: CameraPipeline) -> Totals:
    return Counter({key: n for key, n in pipeline.totals.items() if n})


def by_direction(counted: Totals) -> dict[str, int]:
    result: dict[str, int] = {}
    for (line, direction, _class), n in counted.items():
        result[f"{line}/{direction}"] = result.get(f"{line}/{direction}", 0) + n
    return result


def reference_error(clip: Clip, counted: Totals) -> int | None:
    """Sum over the reference's lines and directions of |counted - hand count|."""
    if clip.reference is None:
        return None
    got = by_direction(counted)
    return sum(abs(got.get(key, 0) - truth) for key, truth in clip.reference.items())


@dataclass(slots=True)
class CameraRun:
    clip: Clip
    pipeline: CameraPipeline
    offered: int = 0
    dropped: int = 0
    max_lag_s: float = 0.0
    finished_s: float = 0.0
    error: BaseException | None = None
    single: Totals = field(default_factory=Counter)

    def replay_live(self, start: float) -> None:
        """Feed the clip at its own pace from ``start`` (``perf_counter``); frames the worker
        is too late for are dropped."""
        try:
            for pending in self._live_frames(start):
                self.pipeline.process(pending)
            self.pipeline.finish()
        except BaseException as exc:  # reported in the table, never silently lost
            self.error = exc
        self.finished_s = time.perf_counter() - start

    def _live_frames(self, start: float) -> Iterator[PendingFrame]:
        fps, count, index = self.clip.fps, len(self.clip.jpegs), 0
        while index < count:
            now = time.perf_counter() - start
            if now < index / fps:
                time.sleep(index / fps - now)
                continue
            oldest_kept = int((now - BUFFER_S) * fps) + 1
            if index < oldest_kept:
                self.dropped += min(oldest_kept, count) - index
                index = oldest_kept
                continue
            self.max_lag_s = max(self.max_lag_s, now - index / fps)
            yield decoded(self.clip, index)
            self.offered += 1
            index += 1


def single_camera(clip: Clip, detector: VehicleDetector, engine: str) -> CameraPipeline:
    """The clip through one camera's pipeline, every frame, no clock: what a camera that
    keeps up counts."""
    pipeline = CameraPipeline(camera_for(clip, 0, engine), detector, clip.fps)
    for index in range(len(clip.jpegs)):
        pipeline.process(decoded(clip, index))
    pipeline.finish()
    return pipeline


def warm_up(detector: VehicleDetector, cameras: list[CameraRun]) -> None:
    """Load (and compile) the model for every camera's inference size before the clock runs."""
    for run in cameras:
        CameraPipeline(run.pipeline.camera, detector, run.clip.fps).process(decoded(run.clip, 0))


class SerialisedDetector(VehicleDetector):
    """The detector as today's worker shared it: one detection at a time, behind a lock."""

    def __init__(self, settings: ModelSettings, model_path: str) -> None:
        super().__init__(settings, model_path)
        self._one_at_a_time = threading.Lock()

    def detect(self, frame: Frame, region: Region | None = None) -> Detections:
        with self._one_at_a_time:
            return super().detect(frame, region)


def run_streams(
    clips: list[Clip], count: int, engine: str, singles: dict[str, Totals]
) -> list[CameraRun]:
    settings = ModelSettings(path=str(MODEL))
    detector = (
        SerialisedDetector(settings, str(MODEL))
        if engine == "today"
        else VehicleDetector(settings, str(MODEL), concurrency=count)
    )
    cameras = []
    for i in range(count):
        clip = clips[i % len(clips)]
        pipeline = CameraPipeline(camera_for(clip, i, engine), detector, clip.fps)
        cameras.append(CameraRun(clip, pipeline, single=singles[clip.name]))
    warm_up(detector, cameras)
    cpu_before = time.process_time()
    start = time.perf_counter()
    threads = [threading.Thread(target=run.replay_live, args=(start,)) for run in cameras]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    _print_streams(count, engine, cameras, (time.process_time() - cpu_before) / wall)
    return cameras


def _print_streams(count: int, engine: str, cameras: list[CameraRun], cores: float) -> None:
    kept = all(run.dropped == 0 and run.error is None for run in cameras)
    fps = [run.offered / max(run.finished_s, 1e-9) for run in cameras]
    analysed = sum(run.pipeline.frames_analysed for run in cameras)
    detected = sum(run.pipeline.frames_detected for run in cameras)
    offered = sum(run.offered for run in cameras)
    errors = [reference_error(run.clip, totals(run.pipeline)) for run in cameras]
    known = [e for e in errors if e is not None]
    same = sum(totals(run.pipeline) == run.single for run in cameras)
    print(
        f"{count} | {engine} | {min(fps):.1f} / {np.mean(fps):.1f}"
        f" | {'yes' if kept else 'no'} ({sum(r.dropped for r in cameras)} dropped,"
        f" max lag {max(r.max_lag_s for r in cameras):.2f} s)"
        f" | {detected / max(analysed, 1):.2f} / {detected / max(offered, 1):.2f}"
        f" | {100 * cores / count:.0f} %"
        f" | {sum(known) if known else '-'}"
        f" | {same} of {count}",
        flush=True,
    )
    for i, run in enumerate(cameras):
        p = run.pipeline
        error = reference_error(run.clip, totals(p))
        print(
            f"    cam-{i} {run.clip.name} {run.clip.size[0]}x{run.clip.size[1]}@{run.clip.fps:.0f}:"
            f" {fps[i]:.1f} frames/s, {run.dropped} dropped,"
            f" detector on {p.frames_detected} of {p.frames_analysed} analysed"
            f" ({run.offered} frames), counts {by_direction(totals(p))}"
            f" ref error {'-' if error is None else error},"
            f" {'=' if totals(p) == run.single else '!='} single camera"
            + (f", FAILED: {run.error!r}" if run.error else ""),
            flush=True,
        )


def worker_memory(clips: list[Clip], cameras: int) -> float:
    """Peak RSS (MiB) of ``python -m detector run`` with ``cameras`` file cameras, read just
    before it is told to stop after WORKER_SECONDS."""
    chosen = [clips[i % len(clips)] for i in range(cameras)]
    named = [(clip.name, clip.lines) for clip in chosen]
    return worker_peak_rss(named, VIDEO, MODEL, WORKER_SECONDS, REPO)


def import_cost() -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of a process that imports what ``count`` imports."""
    script = (
        "import time; t = time.perf_counter(); import detector.cli, detector.engine; "
        "took = time.perf_counter() - t; "
        "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')); "
        "print(took, int(hwm.split()[1]) / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="1,2,4,8", help="camera counts N, comma-separated")
    parser.add_argument("--seconds", type=float, help="replay only this much of each clip")
    parser.add_argument(
        "--fps", type=float, help="replay every clip at this rate (a 25 fps camera)"
    )
    parser.add_argument("--no-worker", action="store_true", help="skip the worker memory run")
    parser.add_argument(
        "--no-objectcounter", action="store_true", help="skip `count` against ObjectCounter"
    )
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    clips = load_clips(args.seconds, args.fps)
    singles: dict[str, dict[str, Totals]] = {"today": {}, "new": {}}
    print("single-camera runs (every frame, no clock):")
    for engine in ("today", "new"):
        detector = VehicleDetector(ModelSettings(path=str(MODEL)), str(MODEL))
        for clip in clips:
            pipeline = single_camera(clip, detector, engine)
            singles[engine][clip.name] = totals(pipeline)
            error = reference_error(clip, singles[engine][clip.name])
            same = singles[engine][clip.name] == singles["today"][clip.name]
            print(
                f"    {engine} {clip.name}: detector on {pipeline.frames_detected} of"
                f" {len(clip.jpegs)} frames ({pipeline.frames_analysed} analysed),"
                f" counts {by_direction(singles[engine][clip.name])}"
                f" ref error {'-' if error is None else error},"
                f" {'=' if same else '!='} today (per line, direction and class)",
                flush=True,
            )
    print(
        "N | engine | camera frames/s min / mean | real time | detector share of analysed /"
        " of all frames | CPU per camera (of one core) | ref error (sum) | = single camera"
    )
    for count in (int(n) for n in args.cameras.split(",")):
        for engine in ("today", "new"):
            run_streams(clips, count, engine, singles[engine])
    seconds, rss = import_cost()
    print(f"imports of `count`: {seconds:.2f} s, peak RSS {rss:.0f} MiB")
    if not args.no_worker:
        peak = worker_memory(clips, 8)
        print(f"worker with 8 cameras (python -m detector run, {WORKER_SECONDS:.0f} s):", end=" ")
        print(f"peak RSS {peak:.0f} MiB")
    if not args.no_objectcounter:
        print("`detector count` against Ultralytics' ObjectCounter (bench/bench_detector.py):")
        bench_detector.main()


if __name__ == "__main__":
    main()
