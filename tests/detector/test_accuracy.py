"""End to end: real clips through the real model with `python -m detector count`,
against the hand-made reference counts in ../shared/data/video/reference_counts.json; and
the engine's savings (motion gate, adaptive rate), on by default, against the engine without
them on every shared clip: not one count may change."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from contract.site import ModelSettings
from detector.detect import VehicleDetector
from tests.conftest import MODEL, VIDEO
from tests.support.counting import count_command, run_detector
from tests.support.replay import SAVINGS_OFF, count, load_clip, totals
from tests.support.worker_memory import URBAN, URBAN_LINES

REFERENCE = json.loads((VIDEO / "reference_counts.json").read_text(encoding="utf-8"))
CLIPS = sorted(
    name for name in REFERENCE if isinstance(REFERENCE[name], dict) and "lines" in REFERENCE[name]
)
LINE_TOLERANCE = 0.1
"""Per line: at most one miss on a 10-vehicle line, two on a 20-vehicle one (run-to-run
noise kept out of CI); the overall bound below is the issue's 5% target."""
TOTAL_TOLERANCE = 0.05


def count_clip(clip: str, cache: Path) -> dict[str, Any]:
    completed = run_detector(count_command(VIDEO / clip, REFERENCE[clip]["lines"], MODEL), cache)
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def results(cache: Path) -> dict[str, dict[str, Any]]:
    return {clip: count_clip(clip, cache) for clip in CLIPS}


@pytest.mark.slow
def test_every_reference_line_is_counted_within_tolerance(
    results: dict[str, dict[str, Any]],
) -> None:
    expected_all = counted_all = 0
    for clip in CLIPS:
        result = results[clip]
        assert result["frames"] > 0
        assert 0 < result["startup_seconds"] < result["seconds"]  # loading is part of the run
        assert result["fps"] == pytest.approx(result["frames"] / result["seconds"], rel=0.01)
        for line in REFERENCE[clip]["lines"]:
            got = result["lines"][line["name"]]
            for direction, truth in line["counts"].items():
                counted = got["by_direction"].get(direction, 0)
                allowed = max(1, round(LINE_TOLERANCE * truth["total"]))
                assert abs(counted - truth["total"]) <= allowed, (
                    clip,
                    line["name"],
                    direction,
                    got,
                )
                expected_all += truth["total"]
                counted_all += counted
            assert got["total"] == sum(got["by_direction"].values())
            assert got["total"] == sum(got["by_class"].values())
    assert abs(counted_all - expected_all) <= TOTAL_TOLERANCE * expected_all


@pytest.mark.slow
def test_person_is_never_a_counted_class(results: dict[str, dict[str, Any]]) -> None:
    classes = {
        c for r in results.values() for line in r["lines"].values() for c in line["by_class"]
    }
    assert classes <= {"bicycle", "car", "motorcycle", "bus", "truck"}


@pytest.mark.slow
def test_the_savings_change_no_count_on_any_shared_clip(
    results: dict[str, dict[str, Any]], cache: Path
) -> None:
    """`count` runs with the motion gate and the adaptive rate (the defaults); the engine
    analysing every frame with the detector must count exactly the same, per line,
    direction and class."""
    detector = VehicleDetector(ModelSettings(cache_dir=cache), str(MODEL))
    for clip in CLIPS:
        lines = REFERENCE[clip]["lines"]
        every_frame = totals(count(load_clip(VIDEO / clip, lines), detector, **SAVINGS_OFF))
        for line in lines:
            by_direction: Counter[str] = Counter()
            by_class: Counter[str] = Counter()
            for (name, direction, vehicle_class), n in every_frame.items():
                if name == line["name"]:
                    by_direction[direction] += n
                    by_class[vehicle_class] += n
            got = results[clip]["lines"][line["name"]]
            assert (got["by_direction"], got["by_class"]) == (by_direction, by_class), clip


@pytest.mark.slow
def test_the_savings_change_no_count_at_a_busy_intersection(cache: Path) -> None:
    """Turning, queuing and parked vehicles, pedestrians and a cyclist."""
    clip = load_clip(VIDEO / URBAN, URBAN_LINES)
    detector = VehicleDetector(ModelSettings(cache_dir=cache), str(MODEL))
    every_frame = count(clip, detector, **SAVINGS_OFF)
    assert totals(every_frame)
    assert totals(count(clip, detector)) == totals(every_frame)
