"""End to end on real clips through the real model: `python -m detector propose` learns a
scene map and proposes lines; `python -m detector count` counts with those lines, unedited;
the total is checked against the hand-made reference counts of every reference line."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from contract.scene import SceneMap
from tests.conftest import MODEL, REPO_ROOT, VIDEO
from tests.support.counting import count_command

REFERENCE_FILE = VIDEO / "reference_counts.json"
TOLERANCE = 0.1
"""The issue's bound: the proposal alone counts within 10 % of the hand count."""
CLIPS = (
    "freeway_approaching_1280x720.mp4",
    "motorway_cctv_twoway_320x240.avi",
    "highway_720p.mp4",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (REFERENCE_FILE.is_file() and MODEL.is_file()),
        reason=f"shared clips or model missing under {VIDEO.parent.parent}",
    ),
]


def run(command: list[str]) -> dict[str, Any]:
    """Run a ``python -m detector`` command; its one JSON object."""
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def reference_total(clip: str) -> int:
    reference = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))[clip]
    return sum(d["total"] for line in reference["lines"] for d in line["counts"].values())


@pytest.fixture(scope="module", params=CLIPS)
def proposed(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """One clip's proposal and the count with its lines."""
    clip: str = request.param
    source = str(VIDEO / clip)
    propose = ["propose", "--source", source, "--model", str(MODEL), "--json"]
    proposal = run([sys.executable, "-m", "detector", *propose])
    lines = [
        {"coords": [v for point in line["points"] for v in point], "name": line["name"]}
        for line in proposal["lines"]
    ]
    counted = run(count_command(VIDEO / clip, lines, MODEL))
    return clip, proposal, counted


def test_the_proposal_alone_counts_within_ten_percent_of_the_hand_count(
    proposed: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    clip, proposal, counted = proposed
    assert proposal["lines"], f"{clip}: nothing proposed"
    total = sum(line["total"] for line in counted["lines"].values())
    expected = reference_total(clip)
    assert abs(total - expected) <= TOLERANCE * expected, (clip, total, expected, proposal["lines"])


def test_the_proposal_is_a_bounded_aggregate_in_native_pixels(
    proposed: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    clip, proposal, _ = proposed
    assert set(proposal) == {"scene_map", "lines", "zones"}
    text = json.dumps(proposal["scene_map"], separators=(",", ":"))
    scene_map = SceneMap.model_validate_json(text)
    assert len(text.encode()) < 64 * 1024
    assert all(cell.n >= scene_map.k for cell in scene_map.cells)
    assert 0 < scene_map.analysed_s <= 300
    assert proposal["lines"] == [line.model_dump(mode="json") for line in scene_map.proposals.lines]
    for line in proposal["lines"]:
        for x, y in line["points"]:
            assert 0 <= x <= scene_map.frame_width, clip
            assert 0 <= y <= scene_map.frame_height, clip
        assert 0 <= line["confidence"] <= 1
