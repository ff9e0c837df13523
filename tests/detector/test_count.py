"""Line crossing rules on synthetic trajectories: no image needed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.camera import CountLine
from detector.count import LineCounter, PixelLine
from detector.currency import FrameMeta, Tracks

BOX_HALF = 4.0


def tracks_at(frame: int, positions: dict[int, tuple[float, float]]) -> Tracks:
    """Tracks whose box centres are the given points (boxes 8x8 px)."""
    ids = np.array(list(positions), dtype=np.int64)
    xyxy = np.array(
        [[x - BOX_HALF, y - BOX_HALF, x + BOX_HALF, y + BOX_HALF] for x, y in positions.values()],
        dtype=np.float32,
    ).reshape(-1, 4)
    return Tracks(FrameMeta(frame, frame / 25, 0, 0), ids, xyxy, ("car",) * len(ids))


def run_trajectory(
    line: PixelLine, path: list[tuple[float, float]], track_id: int = 1
) -> list[str]:
    counter = LineCounter([line])
    directions: list[str] = []
    for frame, point in enumerate(path):
        directions += [c.direction for c in counter.update(tracks_at(frame, {track_id: point}))]
    return directions


def pixel_line(
    points: tuple[tuple[float, float], tuple[float, float]], scale: float = 1.0
) -> PixelLine:
    return PixelLine.from_config(CountLine(name="l", points=points), (scale, scale))


@pytest.mark.parametrize(
    ("line_points", "path", "expected"),
    [
        # horizontal line: moving down the image and back up
        (((0, 50), (100, 50)), [(50, 40), (50, 49), (50, 51), (50, 60)], ["down"]),
        (((100, 50), (0, 50)), [(50, 40), (50, 60)], ["down"]),
        (((0, 50), (100, 50)), [(50, 60), (50, 40)], ["up"]),
        # landing exactly on the line counts (on or past)
        (((0, 50), (100, 50)), [(50, 40), (50, 50)], ["down"]),
        # vertical line: leftwards and rightwards
        (((50, 0), (50, 100)), [(60, 50), (40, 50)], ["left"]),
        (((50, 100), (50, 0)), [(40, 50), (60, 50)], ["right"]),
        # oblique lines take the label of their dominant axis
        (((0, 0), (100, 60)), [(50, 10), (50, 50)], ["down"]),
        (((0, 0), (60, 100)), [(40, 20), (20, 40)], ["left"]),
        # passing beside the segment is no crossing
        (((0, 50), (100, 50)), [(150, 40), (150, 60)], []),
        # a track first seen past the line never crossed in view
        (((0, 50), (100, 50)), [(50, 60), (50, 70)], []),
        # jitter across the line counts once
        (((0, 50), (100, 50)), [(50, 48), (50, 52), (50, 48), (50, 52), (50, 60)], ["down"]),
        # a long jump over a lost stretch (tracker re-found the vehicle) still counts
        (((0, 50), (100, 50)), [(50, 10), (50, 90)], ["down"]),
    ],
)
def test_crossing_rules(
    line_points: tuple[tuple[float, float], tuple[float, float]],
    path: list[tuple[float, float]],
    expected: list[str],
) -> None:
    assert run_trajectory(pixel_line(line_points), path) == expected


@pytest.mark.parametrize(("width", "height"), [(160, 120), (320, 240), (1920, 1080)])
@pytest.mark.parametrize("vertical", [False, True])
def test_relative_lines_work_at_any_resolution(width: int, height: int, vertical: bool) -> None:
    """The same relative line counts the same at 160x120 and at 1920x1080."""
    points = ((0.5, 0.1), (0.5, 0.9)) if vertical else ((0.1, 0.5), (0.9, 0.5))
    line = PixelLine.from_config(CountLine(name="l", points=points), (width, height))
    steps = np.linspace(0.2, 0.8, 12)
    path = [(s * width, 0.5 * height) if vertical else (0.5 * width, s * height) for s in steps]
    assert run_trajectory(line, [(float(x), float(y)) for x, y in path]) == [
        "right" if vertical else "down"
    ]


def test_direction_names_rename_geometric_labels() -> None:
    line = PixelLine.from_config(
        CountLine(
            name="main",
            points=((0, 50), (100, 50)),
            direction_names={"down": "southbound", "up": "northbound"},
        ),
        (1, 1),
    )
    assert run_trajectory(line, [(50, 40), (50, 60)]) == ["southbound"]
    assert run_trajectory(line, [(50, 60), (50, 40)]) == ["northbound"]


def test_each_vehicle_counts_once_per_line_and_lines_are_independent() -> None:
    lines = [
        pixel_line(((0, 50), (100, 50))),
        PixelLine.from_config(CountLine(name="second", points=((0, 70), (100, 70))), (1, 1)),
    ]
    counter = LineCounter(lines)
    crossings = []
    for frame, y in enumerate([40, 60, 80, 60, 40, 60, 80]):
        crossings += counter.update(tracks_at(frame, {1: (50, y), 2: (20, y + 5)}))
    assert sorted((c.line, c.direction) for c in crossings) == sorted(
        [("l", "down"), ("second", "down")] * 2
    )


def test_forgotten_tracks_release_memory() -> None:
    counter = LineCounter([pixel_line(((0, 50), (100, 50)))])
    for frame in range(1000):
        counter.update(tracks_at(frame, {frame: (50, 40)}))
        counter.forget({frame})
    assert len(counter._tracks) == 1


coordinate = st.floats(min_value=0, max_value=1000, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    path=st.lists(st.tuples(coordinate, coordinate), min_size=2, max_size=30),
    line=st.tuples(st.tuples(coordinate, coordinate), st.tuples(coordinate, coordinate)).filter(
        lambda p: np.hypot(p[1][0] - p[0][0], p[1][1] - p[0][1]) > 1
    ),
)
def test_a_track_counts_at_most_once_per_line(
    path: list[tuple[float, float]], line: tuple[tuple[float, float], tuple[float, float]]
) -> None:
    assert len(run_trajectory(pixel_line(line), path)) <= 1


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(min_value=-200, max_value=-1),
    end=st.floats(min_value=1, max_value=200),
    x=st.floats(min_value=5, max_value=95),
    steps=st.integers(min_value=1, max_value=20),
)
def test_direction_symmetry(start: float, end: float, x: float, steps: int) -> None:
    """A straight pass through the segment counts once, and reversing it flips the label."""
    line = pixel_line(((0, 0), (100, 0)))
    forward = [(x, float(y)) for y in np.linspace(start, end, steps + 1)]
    assert run_trajectory(line, forward) == ["down"]
    assert run_trajectory(line, forward[::-1]) == ["up"]


@settings(max_examples=100, deadline=None)
@given(crossings=st.integers(min_value=0, max_value=6))
def test_k_crossings_count_per_rule(crossings: int) -> None:
    """Going back and forth k times counts 1 if k >= 1 (first direction), else 0."""
    line = pixel_line(((0, 50), (100, 50)))
    path = [(50.0, 40.0 if i % 2 == 0 else 60.0) for i in range(crossings + 1)]
    assert run_trajectory(line, path) == (["down"] if crossings else [])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # down, then back up well clear of the line: a passage back (a U-turn), counted once
        ([(50, 30), (50, 70), (50, 30)], [("down", True), ("up", False)]),
        # jitter on the line, within half the box's side of it: no passage back
        ([(50, 40), (50, 52), (50, 47), (50, 53), (50, 46)], [("down", True)]),
        # back, then forward once more
        (
            [(50, 30), (50, 70), (50, 30), (50, 70)],
            [("down", True), ("up", False), ("down", False)],
        ),
        # back round the end of the segment, not over it
        ([(50, 30), (50, 70), (150, 70), (150, 30)], [("down", True)]),
    ],
)
def test_passages_report_crossing_back_with_hysteresis(
    path: list[tuple[float, float]], expected: list[tuple[str, bool]]
) -> None:
    counter = LineCounter([pixel_line(((0, 50), (100, 50)))])
    passages = []
    for frame, point in enumerate(path):
        passages += counter.passages(tracks_at(frame, {1: point}))
    assert [(p.crossing.direction, p.counted) for p in passages] == expected
    assert {p.track_id for p in passages} <= {1}
