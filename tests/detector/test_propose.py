"""Proposed lines and zones from the scene map alone, checked by counting with them.

Synthetic traffic (the trajectory factory of test_scene) is learnt into a map, the map is
turned into proposals, and the real line counter then counts the same traffic with the
proposed lines. Each lane is counted on its own, so "every vehicle exactly once, on the
line of its own flow" can be checked exactly.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.camera import CameraSetup, CountLine, Zone
from contract.scene import Proposals, ProposedLine, SceneCell, SceneMap
from contract.site import SceneSettings
from detector.cli import describe_proposals, main, parse_line
from detector.count import LineCounter, PixelLine
from detector.propose import propose
from tests.detector.test_scene import T0, T1, Lane, drive, learn, parked

HD = (1280, 720)


def count_lane(lane: Lane, lines: Sequence[ProposedLine], size: tuple[int, int]) -> Counter[str]:
    """Crossings of one lane's vehicles per ``line/direction``, as the worker counts them."""
    counter = LineCounter([PixelLine.from_config(_count_line(line), (1.0, 1.0)) for line in lines])
    crossings: Counter[str] = Counter()
    for tracks in drive([lane], size):
        crossings.update(f"{c.line}/{c.direction}" for c in counter.update(tracks))
        counter.forget(set(tracks.track_id.tolist()))
    return crossings


def _count_line(line: ProposedLine) -> CountLine:
    (x1, y1), (x2, y2) = line.points
    return CountLine(
        name=line.name, points=((x1, y1), (x2, y2)), direction_names=line.direction_names
    )


def assert_each_vehicle_counted_once(
    lanes: Sequence[Lane], size: tuple[int, int], scene: SceneSettings | None = None
) -> SceneMap:
    """Every lane's vehicles are counted once each, all on one line and in one direction."""
    scene_map = learn(drive(lanes, size), scene)
    assert_valid_set_up(scene_map)
    lines = scene_map.proposals.lines
    for lane in lanes:
        crossings = count_lane(lane, lines, size)
        assert sum(crossings.values()) == lane.vehicles, (lane, crossings, lines)
        assert len(crossings) == 1, (lane, crossings)
    return scene_map


def fan(x_bottom: float, towards: bool, vehicles: int, first: float = 0.0) -> Lane:
    """A lane of a road seen along its length: from the vanishing point to the frame's bottom."""
    far = (640 + (x_bottom - 640) * 0.1, 120.0)
    near = (x_bottom, 720.0)
    start, end = (far, near) if towards else (near, far)
    return Lane(start, end, vehicles, speed=220, headway=1.5, first=first, box=(60, 50))


# --- the scenes the issue names -----------------------------------------------------------------


def test_a_one_way_road_gets_one_line_across_every_lane_named_after_its_flow() -> None:
    lanes = [fan(200, True, 5), fan(450, True, 4, 0.5), fan(700, True, 6, 0.2)]
    scene_map = assert_each_vehicle_counted_once(lanes, HD)
    (line,) = scene_map.proposals.lines
    assert line.name == "towards"
    assert line.direction_names == {"down": "towards", "up": "away"}
    assert count_lane(lanes[0], [line], HD) == {"towards/towards": 5}
    assert 0 < line.confidence <= 1
    (zone,) = scene_map.proposals.zones
    assert zone.name == "towards-approach"
    assert zone.lanes == 3
    line_y = line.points[0][1]
    assert all(y <= line_y + 1 for _, y in zone.polygon)  # upstream: above the line


def test_a_two_way_road_gets_one_line_per_direction_each_counting_its_own_traffic() -> None:
    lanes = [fan(250, True, 6), fan(480, True, 4, 0.4), fan(820, False, 5), fan(1050, False, 3, 1)]
    scene_map = assert_each_vehicle_counted_once(lanes, HD)
    names = {line.name: line for line in scene_map.proposals.lines}
    assert set(names) == {"towards", "away"}
    assert names["away"].direction_names == {"up": "away", "down": "towards"}
    assert count_lane(lanes[0], scene_map.proposals.lines, HD) == {"towards/towards": 6}
    assert count_lane(lanes[2], scene_map.proposals.lines, HD) == {"away/away": 5}
    assert {zone.name for zone in scene_map.proposals.zones} == {
        "towards-approach",
        "away-approach",
    }


def test_a_road_seen_from_the_side_gets_rightward_and_leftward_lines() -> None:
    lanes = [
        Lane((0, 300), (1280, 320), 7, speed=300),
        Lane((0, 345), (1280, 365), 3, speed=300, first=0.7),
        Lane((1280, 420), (0, 400), 6, speed=300, first=0.3),
    ]
    scene_map = assert_each_vehicle_counted_once(lanes, HD)
    assert {line.name for line in scene_map.proposals.lines} == {"rightward", "leftward"}
    rightward = next(line for line in scene_map.proposals.lines if line.name == "rightward")
    assert rightward.direction_names == {"right": "rightward", "left": "leftward"}
    assert count_lane(lanes[2], scene_map.proposals.lines, HD) == {"leftward/leftward": 6}


def test_crossing_roads_are_counted_once_each_on_their_own_lines() -> None:
    lanes = [
        Lane((0, 340), (1280, 340), 6, speed=300),
        Lane((1280, 390), (0, 390), 5, speed=300, first=0.5),
        Lane((600, 0), (600, 720), 6, speed=200, first=0.2),
        Lane((680, 720), (680, 0), 4, speed=200, first=0.9),
    ]
    scene_map = assert_each_vehicle_counted_once(lanes, HD)
    assert len(scene_map.proposals.lines) == 4


def test_a_quiet_lane_that_the_map_withholds_is_still_counted() -> None:
    """Two vehicles are fewer than k: their lane is not in the map, yet the line spans it."""
    busy, quiet = fan(450, True, 6), fan(200, True, 2, 0.7)
    scene_map = learn(drive([busy, quiet], HD))
    assert all(cell.n >= 3 for cell in scene_map.cells)
    assert count_lane(quiet, scene_map.proposals.lines, HD).total() == 2


def test_a_road_broken_by_an_occlusion_gets_one_line_not_two() -> None:
    """Tracks end under a bridge and restart beyond it: one road, so one line."""
    before = Lane((0, 360), (500, 360), 6, speed=250, headway=1.5)
    after = Lane((760, 360), (1280, 360), 6, speed=250, headway=1.5, first=760 / 250)
    scene_map = learn(drive([before, after], HD))
    (line,) = scene_map.proposals.lines
    counted = count_lane(before, [line], HD).total() + count_lane(after, [line], HD).total()
    assert counted == 6


def test_a_road_along_the_frames_edge_is_partly_out_of_view_and_gets_no_line() -> None:
    edge = Lane((1280, 8), (0, 8), 8, speed=300, headway=1)
    road = Lane((0, 400), (1280, 400), 5, speed=300)
    scene_map = learn(drive([edge, road], HD))
    (line,) = scene_map.proposals.lines
    assert count_lane(edge, [line], HD).total() == 0
    assert count_lane(road, [line], HD).total() == 5


def test_parked_vehicles_bound_a_line_like_another_flow() -> None:
    road = Lane((0, 300), (1280, 300), 6, speed=300)
    parking = [parked((x, 500), 3, seconds=25) for x in (560.0, 620.0, 680.0)]
    scene_map = learn(drive([road, *parking], HD, seconds=25))
    (line,) = scene_map.proposals.lines
    assert max(y for _, y in line.points) < 500


def test_a_map_without_moving_traffic_proposes_nothing() -> None:
    parking = [parked((x, 500), 3, seconds=20) for x in (560.0, 620.0)]
    assert learn(drive(parking, HD, seconds=20)).proposals == Proposals(lines=[], zones=[])


# --- any straight two-way road ------------------------------------------------------------------


@st.composite
def two_way_roads(draw: st.DrawFn) -> tuple[list[Lane], tuple[int, int]]:
    """A straight two-way road through the middle of the frame at any angle: 1-3 lanes each
    way, any lane width and speed, each lane from frame edge to frame edge."""
    size = draw(st.sampled_from([(320, 240), (640, 480), (1280, 720), (1920, 1080)]))
    width, height = size
    angle = draw(st.floats(0, math.pi))
    direction = np.array([math.cos(angle), math.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    lane_px = draw(st.floats(0.04, 0.08)) * max(size)
    median_px = draw(st.floats(0.5, 2.0)) * lane_px
    lanes = []
    for sign, count in ((1, draw(st.integers(1, 3))), (-1, draw(st.integers(1, 3)))):
        for i in range(count):
            centre = np.array(size) / 2 + sign * (median_px / 2 + lane_px * (i + 0.5)) * normal
            a, b = _frame_chord(centre, direction, size)
            lanes.append(
                Lane(
                    a if sign > 0 else b,
                    b if sign > 0 else a,
                    vehicles=draw(st.integers(3, 8)),
                    speed=draw(st.floats(0.15, 0.4)) * max(size),
                    headway=draw(st.floats(0.8, 2.5)),
                    first=draw(st.floats(0, 2)),
                    box=(0.7 * lane_px, 0.55 * lane_px),
                )
            )
    return lanes, (width, height)


def _frame_chord(
    point: np.ndarray, direction: np.ndarray, size: tuple[int, int]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where the line through ``point`` along ``direction`` leaves the frame, both ways."""
    bounds = np.array(size, float)
    ends = []
    for sign in (-1.0, 1.0):
        d = sign * direction
        with np.errstate(divide="ignore", over="ignore"):
            steps = np.where(d > 0, (bounds - point) / d, np.where(d < 0, -point / d, np.inf))
        end = point + 0.999 * float(steps.min()) * d
        ends.append((float(end[0]), float(end[1])))
    return ends[0], ends[1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(road=two_way_roads())
def test_on_any_straight_two_way_road_every_vehicle_is_counted_exactly_once(
    road: tuple[list[Lane], tuple[int, int]],
) -> None:
    lanes, size = road
    scene_map = assert_each_vehicle_counted_once(lanes, size)
    assert len(scene_map.proposals.lines) == 2


# --- proposals are valid set-up, from the map alone ---------------------------------------------


@st.composite
def scene_maps(draw: st.DrawFn) -> SceneMap:
    """Any valid map: cells anywhere, with any counts and motion."""
    cols, rows = draw(st.integers(4, 96)), draw(st.integers(4, 96))
    places = draw(
        st.lists(
            st.tuples(st.integers(0, cols - 1), st.integers(0, rows - 1)),
            unique=True,
            max_size=300,
        )
    )
    cells = [
        SceneCell(
            c=c,
            r=r,
            n=draw(st.integers(3, 60)),
            vx=draw(st.integers(-400, 400)),
            vy=draw(st.integers(-400, 400)),
            s=draw(st.sampled_from([0.0, 0.1, 0.6, 1.0])),
            k=[0, 3, 0, 0, 0],
        )
        for c, r in places
    ]
    cells = [cell.model_copy(update={"k": [0, cell.n, 0, 0, 0]}) for cell in cells]
    return SceneMap(
        camera_id="cam-1",
        window_start=T0,
        window_end=T1,
        analysed_s=300,
        frame_width=draw(st.integers(160, 1920)),
        frame_height=draw(st.integers(120, 1080)),
        cols=cols,
        rows=rows,
        k=3,
        vehicles=100,
        withheld_cells=0,
        cells=cells,
        proposals=Proposals(lines=[], zones=[]),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene_map=scene_maps())
def test_proposals_depend_on_the_map_alone_and_are_a_valid_set_up(scene_map: SceneMap) -> None:
    proposals = propose(scene_map)
    assert propose(SceneMap.model_validate_json(scene_map.model_dump_json())) == proposals
    assert_valid_set_up(scene_map.model_copy(update={"proposals": proposals}))


def assert_valid_set_up(scene_map: SceneMap) -> None:
    """The proposals pass as a camera set-up in native pixels, each line as a ``--line``
    argument, with direction names for exactly the labels the counter gives it."""
    proposals = scene_map.proposals
    if proposals.lines:
        CameraSetup(
            reference_resolution=(scene_map.frame_width, scene_map.frame_height),
            lines=[_count_line(line) for line in proposals.lines],
            zones=[
                Zone(name=zone.name, polygon=[(x, y) for x, y in zone.polygon], lanes=zone.lanes)
                for zone in proposals.zones
            ],
        )
    for index, line in enumerate(proposals.lines):
        (x1, y1), (x2, y2) = line.points
        parsed = parse_line(f"{x1:g},{y1:g},{x2:g},{y2:g},{line.name}", index)
        assert parsed.points == ((x1, y1), (x2, y2))
        plain = PixelLine.from_config(parsed, (1.0, 1.0))
        assert set(line.direction_names) == {plain.positive_label, plain.negative_label}


def test_the_summary_gives_each_line_as_a_count_argument() -> None:
    lanes = [fan(250, True, 6), fan(900, False, 5)]
    scene_map = learn(drive(lanes, HD))
    summary = describe_proposals(scene_map)
    arguments = [word for word in summary.split() if word.startswith("--line=")]
    assert len(arguments) == len(scene_map.proposals.lines) == 2
    parsed = [
        parse_line(argument.removeprefix("--line="), i) for i, argument in enumerate(arguments)
    ]
    assert [line.name for line in parsed] == [line.name for line in scene_map.proposals.lines]
    assert f"{scene_map.vehicles} vehicles" in summary


@pytest.mark.parametrize(
    ("vx", "vy", "name"),
    [(0, 90, "towards"), (0, -90, "away"), (90, 0, "rightward"), (-90, 0, "leftward")],
)
def test_lines_are_named_after_the_flow_they_count(vx: int, vy: int, name: str) -> None:
    cells = [
        SceneCell(c=c, r=r, n=5, vx=vx, vy=vy, s=0.0, k=[0, 5, 0, 0, 0])
        for c in range(10, 20)
        for r in range(10, 20)
    ]
    scene_map = SceneMap(
        camera_id="cam-1",
        window_start=T0,
        window_end=T1,
        analysed_s=60,
        frame_width=640,
        frame_height=480,
        cols=32,
        rows=24,
        k=3,
        vehicles=5,
        withheld_cells=0,
        cells=cells,
        proposals=Proposals(lines=[], zones=[]),
    )
    (line,) = propose(scene_map).lines
    assert line.name == name
    assert name in line.direction_names.values()


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["--source", "no-such-clip.mp4"], "video file not found"),
        (["--source", "clip.mp4", "--k", "1"], "--grid/--k"),
        (["--source", "clip.mp4", "--seconds", "0"], "--seconds"),
        (["--source", "clip.mp4", "--seconds", "soon"], "--seconds"),
    ],
)
def test_bad_propose_arguments_get_a_clear_error(
    arguments: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["propose", *arguments])
    except SystemExit as exc:  # argparse's own refusal
        code = int(str(exc.code))
    assert code == 2
    assert error in capsys.readouterr().err
