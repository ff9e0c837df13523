"""Start-up and memory of the edge worker: what `count` imports, and the resident memory of
a real worker with eight cameras sharing one detector (real model, real clips)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import MODEL, REPO_ROOT, VIDEO
from tests.support.counting import count_command, run_detector
from tests.support.worker_memory import shared_clips, worker_peak_rss

REFERENCE = json.loads((VIDEO / "reference_counts.json").read_text(encoding="utf-8"))
EIGHT_CAMERAS_MIB = 640
"""The stated bound for a worker with 8 cameras (the shared clips twice; measured about
520 MiB, one camera about 265 MiB): one model, compiled once per inference size."""
HEAVY = ("torch", "ultralytics")
"""Needed only to export a model the first time; a start with a cached export skips them."""


def imported(command: list[str], cache: Path) -> set[str]:
    """Top-level packages a command imported (``-X importtime``), after it succeeded."""
    completed = run_detector([sys.executable, "-X", "importtime", *command[1:]], cache)
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in completed.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_count_help_imports_no_model_runtime(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "detector", "count", "--help"]
    assert not imported(command, tmp_path) & {*HEAVY, "openvino"}


@pytest.mark.slow
def test_count_with_a_cached_export_imports_neither_torch_nor_ultralytics(
    tmp_path: Path,
) -> None:
    clip = "motorway_cctv_twoway_320x240.avi"
    command = [*count_command(VIDEO / clip, REFERENCE[clip]["lines"], MODEL), "--imgsz", "160"]
    first = imported(command, tmp_path)
    assert "openvino" in first, "the CPU backend should be OpenVINO"
    later = imported(command, tmp_path)
    assert "openvino" in later
    assert not later & set(HEAVY)


@pytest.mark.slow
def test_a_worker_with_eight_cameras_stays_under_its_memory_bound() -> None:
    cameras = shared_clips(REFERENCE) * 2
    assert len(cameras) == 8
    peak = worker_peak_rss(cameras, VIDEO, MODEL, seconds=30, repo=REPO_ROOT)
    assert peak < EIGHT_CAMERAS_MIB
