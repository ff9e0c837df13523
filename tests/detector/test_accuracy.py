"""End to end: real clips through the real model with `python -m detector count`,
against the hand-made reference counts in ../shared/data/video/reference_counts.json."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MODEL, REPO_ROOT, VIDEO
from tests.support.counting import count_command

REFERENCE = json.loads((VIDEO / "reference_counts.json").read_text(encoding="utf-8"))
CLIPS = sorted(
    name for name in REFERENCE if isinstance(REFERENCE[name], dict) and "lines" in REFERENCE[name]
)
LINE_TOLERANCE = 0.1
"""Per line: at most one miss on a 10-vehicle line, two on a 20-vehicle one (run-to-run
noise kept out of CI); the overall bound below is the issue's 5% target."""
TOTAL_TOLERANCE = 0.05


def count_clip(clip: str, cache: Path) -> dict[str, Any]:
    completed = subprocess.run(
        count_command(VIDEO / clip, REFERENCE[clip]["lines"], MODEL),
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=600,
        env={**os.environ, "TALLY_MODEL_CACHE": str(cache)},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    cache = tmp_path_factory.mktemp("model-cache")
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
