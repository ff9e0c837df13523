"""A real worker (``python -m detector run``) with file cameras replaying shared clips, and
its peak resident memory, as the memory test and bench/bench_streams.py measure it."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import yaml

URBAN = "urban_intersection_640x480.mp4"
URBAN_LINES = [  # no reference counts: lines across its busy arms
    {"name": "centre", "coords": [300, 40, 300, 260]},
    {"name": "east", "coords": [560, 20, 560, 280]},
    {"name": "west", "coords": [0, 140, 130, 140]},
]
ClipLines = tuple[str, Sequence[Mapping[str, Any]]]
"""A clip's file name and its lines as in reference_counts.json (``name``, ``coords``)."""


def shared_clips(reference: Mapping[str, Any]) -> list[ClipLines]:
    """Every shared clip with its lines: the reference clips', and URBAN_LINES."""
    named: list[ClipLines] = [(name, entry["lines"]) for name, entry in reference.items()]
    return [*named, (URBAN, URBAN_LINES)]


def peak_rss_mib(pid: int | str = "self") -> float:
    """A process's resident-memory high-water mark (``VmHWM``: unlike ``ru_maxrss`` it is
    not inherited from the parent across fork and exec)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def native_size(clip: Path) -> list[int]:
    capture = cv2.VideoCapture(str(clip))
    size = [int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))]
    capture.release()
    return size


def worker_peak_rss(
    cameras: Sequence[ClipLines], video: Path, model: Path, seconds: float, repo: Path
) -> float:
    """Peak RSS (MiB) of a worker with one camera per entry, each replaying its clip until
    the worker is told to stop after ``seconds`` (its memory peaks once every camera runs)."""
    with tempfile.TemporaryDirectory() as folder:
        config = {
            "site": "memory",
            "model": {"path": str(model)},
            "outbox": {"path": str(Path(folder) / "outbox.db")},
            "cameras": [
                {
                    "id": f"cam-{i}",
                    "source": str(video / name),
                    "plays": 0,  # replayed until stopped
                    "reference_resolution": native_size(video / name),
                    "lines": [
                        {"name": line["name"], "points": [line["coords"][:2], line["coords"][2:]]}
                        for line in lines
                    ],
                }
                for i, (name, lines) in enumerate(cameras)
            ],
        }
        path = Path(folder) / "site.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "detector", "run", "--config", str(path)],
            cwd=repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(seconds)
            return peak_rss_mib(process.pid)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(60)
