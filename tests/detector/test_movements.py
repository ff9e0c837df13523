"""Turning movements from trajectories (no image): every movement of a four-leg junction,
broken tracks, U-turns, vehicles that stop on a gate or are seen at one gate only, and the
reconciliation with the line counts; end to end on the shared intersection clip."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import VEHICLE_CLASSES, IntervalReport, VehicleClass, ZoneRow
from contract.camera import CameraSetup, CountLine
from contract.planning import Intersection, Leg
from contract.site import ModelSettings
from detector.aggregate import IntervalAggregator
from detector.count import LineCounter, PixelLine
from detector.currency import FrameMeta, MovementTally, Tracks, ZoneSample
from detector.detect import VehicleDetector
from detector.movements import MovementTracker
from tests.conftest import MODEL, REPO_ROOT, VIDEO
from tests.support.counting import count_command
from tests.support.replay import count, load_clip

FPS = 10
SIZE = 400
BOX_HALF = 10.0
HELD_FRAMES = 15
"""How long the tracker holds a track it lost (ByteTrack's 1.5 s at 10 frames/s)."""
Point = tuple[float, float]
LEGS: dict[str, tuple[Point, Point, Point, Point]] = {
    # far inbound, near inbound, near outbound, far outbound (driving on the right)
    "north": ((190, 20), (190, 170), (210, 170), (210, 20)),
    "east": ((380, 190), (230, 190), (230, 210), (380, 210)),
    "south": ((210, 380), (210, 230), (190, 230), (190, 380)),
    "west": ((20, 210), (170, 210), (170, 190), (20, 190)),
}
GATES: dict[str, tuple[Point, Point]] = {
    "north": ((150, 100), (250, 100)),
    "east": ((300, 150), (300, 250)),
    "south": ((150, 300), (250, 300)),
    "west": ((100, 150), (100, 250)),
}
JUNCTION = Intersection(
    legs=[
        Leg(gate="north", bearing_deg=0),
        Leg(gate="east", bearing_deg=90),
        Leg(gate="south", bearing_deg=180),
        Leg(gate="west", bearing_deg=270),
    ]
)
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class Sample:
    """One vehicle in one frame, as the tracker reports it."""

    frame: int
    track_id: int
    point: Point
    vehicle_class: VehicleClass = "car"


def drive(waypoints: list[Point], track_id: int, start: int = 0, step: float = 6.0) -> list[Sample]:
    """A vehicle moving ``step`` pixels a frame along the waypoints."""
    points: list[Point] = [waypoints[0]]
    for a, b in itertools.pairwise(waypoints):
        n = max(1, round(float(np.hypot(b[0] - a[0], b[1] - a[1])) / step))
        points += [
            (a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n) for k in range(1, n + 1)
        ]
    return [Sample(start + i, track_id, p) for i, p in enumerate(points)]


def route(origin: str, destination: str) -> list[Point]:
    """In by one leg, out by another (or the same: a U-turn)."""
    far_in, near_in, _, _ = LEGS[origin]
    _, _, near_out, far_out = LEGS[destination]
    middle: list[Point] = [] if origin == destination else [(200, 200)]
    return [far_in, near_in, *middle, near_out, far_out]


def broken(samples: list[Sample], at: int, gap: int, new_id: int, overlap: int = 0) -> list[Sample]:
    """The track is lost after sample ``at`` for ``gap`` frames and found again under
    ``new_id`` (with ``overlap``: both ids seen for that many frames, a duplicate)."""
    before = samples[: at + 1 + overlap]
    after = [Sample(s.frame, new_id, s.point, s.vehicle_class) for s in samples[at + 1 + gap :]]
    return before + after


def stop_on(samples: list[Sample], point: Point, frames: int, jitter: float = 3.0) -> list[Sample]:
    """The vehicle stands ``frames`` frames at the sample nearest ``point``, its box centre
    jittering by ``jitter`` pixels, then drives on."""
    at = min(range(len(samples)), key=lambda i: np.hypot(*np.subtract(samples[i].point, point)))
    s = samples[at]
    rng = np.random.default_rng(at)
    standing = [
        Sample(
            s.frame + k,
            s.track_id,
            (s.point[0] + rng.uniform(-jitter, jitter), s.point[1] + rng.uniform(-jitter, jitter)),
        )
        for k in range(frames)
    ]
    later = [Sample(x.frame + frames, x.track_id, x.point, x.vehicle_class) for x in samples[at:]]
    return samples[:at] + standing + later


@dataclass(slots=True)
class Outcome:
    """What the counting stages made of the scene."""

    lines: Counter[str] = field(default_factory=Counter)
    tally: MovementTally = field(default_factory=MovementTally)
    reports: list[IntervalReport] = field(default_factory=list)

    def reconciles(self) -> bool:
        """Every gate's line total is its movements out, in (from another gate) and unmatched."""
        for gate in GATES:
            out = sum(n for (o, _, _), n in self.tally.movements.items() if o == gate)
            into = sum(n for (o, d, _), n in self.tally.movements.items() if d == gate != o)
            unmatched = sum(n for (g, _), n in self.tally.unmatched.items() if g == gate)
            if self.lines[gate] != out + into + unmatched:
                return False
        return True

    def movements(self) -> dict[tuple[str, str], int]:
        moves: Counter[tuple[str, str]] = Counter()
        for (o, d, _), n in self.tally.movements.items():
            moves[(o, d)] += n
        return dict(moves)

    def unmatched(self) -> dict[str, int]:
        gates: Counter[str] = Counter()
        for (g, _), n in self.tally.unmatched.items():
            gates[g] += n
        return dict(gates)


def no_zones(name: str, samples: list[ZoneSample]) -> ZoneRow:
    raise AssertionError("no zones configured")


def run(
    vehicles: list[list[Sample]],
    gates: dict[str, tuple[Point, Point]] = GATES,
    counted: tuple[VehicleClass, ...] = VEHICLE_CLASSES,
    tail_frames: int = 40,
    flush: bool = True,
    view: tuple[float, float, float, float] | None = None,
) -> Outcome:
    """The scene through the line counter, the movements stage and the aggregator (one
    report a minute), as the engine runs them; ``tail_frames`` of empty road after it."""
    counter = LineCounter(
        [PixelLine.from_config(CountLine(name=n, points=p), (1, 1)) for n, p in gates.items()]
    )
    stage = MovementTracker(counted, view=view)
    aggregator = IntervalAggregator("cam", 60, no_zones, intersection=JUNCTION)
    by_frame: dict[int, list[Sample]] = {}
    for sample in (s for vehicle in vehicles for s in vehicle):
        by_frame.setdefault(sample.frame, []).append(sample)
    last_seen: dict[int, int] = {}
    outcome = Outcome()
    for frame in range(max(by_frame, default=0) + tail_frames):
        samples = by_frame.get(frame, [])
        meta = FrameMeta(frame, T0 + frame / FPS, SIZE, SIZE)
        tracks = Tracks(
            meta,
            np.array([s.track_id for s in samples], dtype=np.int64),
            np.array(
                [
                    [x - BOX_HALF, y - BOX_HALF, x + BOX_HALF, y + BOX_HALF]
                    for x, y in (s.point for s in samples)
                ],
                dtype=np.float32,
            ).reshape(-1, 4),
            tuple(s.vehicle_class for s in samples),
        )
        outcome.reports += aggregator.add_frame(meta)
        last_seen |= {s.track_id: frame for s in samples}
        live = {i for i, seen in last_seen.items() if frame - seen <= HELD_FRAMES}
        passages = counter.passages(tracks)
        counter.forget(live)
        crossings = [
            p.crossing for p in passages if p.counted and p.crossing.vehicle_class in counted
        ]
        aggregator.add_crossings(crossings)
        outcome.lines.update(c.line for c in crossings)
        closed = stage.update(tracks, passages, live)
        aggregator.add_movements(closed)
        outcome.tally.add(closed)
    if flush:
        closed = stage.flush()
        aggregator.add_movements(closed)
        outcome.tally.add(closed)
        outcome.reports += aggregator.flush()
    return outcome


TURNS = {
    ("north", "south"): "through",
    ("north", "east"): "left",
    ("north", "west"): "right",
    ("east", "west"): "through",
    ("east", "south"): "left",
    ("east", "north"): "right",
    ("south", "north"): "through",
    ("south", "west"): "left",
    ("south", "east"): "right",
    ("west", "east"): "through",
    ("west", "north"): "left",
    ("west", "south"): "right",
    **{(leg, leg): "u_turn" for leg in LEGS},
}


@pytest.mark.parametrize(("origin", "destination"), list(TURNS))
def test_every_movement_is_counted_once_when_the_track_ends(origin: str, destination: str) -> None:
    outcome = run([drive(route(origin, destination), 1)], flush=False)
    assert outcome.movements() == {(origin, destination): 1}
    assert outcome.unmatched() == {}
    assert outcome.lines == Counter(
        {origin: 1} if origin == destination else {origin: 1, destination: 1}
    )
    assert outcome.reconciles()
    assert JUNCTION.movement(origin, destination) == TURNS[(origin, destination)]


def test_reports_carry_named_movements_in_the_interval_the_vehicle_was_closed() -> None:
    """A vehicle in the last seconds of a minute: its crossings in that minute, its
    movement in the next one (closed after its track ended); nothing lost or doubled."""
    start = 60 * FPS - 40
    outcome = run([drive(route("north", "east"), 1, start=start), drive(route("west", "south"), 2)])
    rows = [
        (r.interval_start.timestamp() - T0, m.origin, m.destination, m.movement, m.count)
        for r in outcome.reports
        for m in r.movements
    ]
    assert sorted(rows) == [(0, "west", "south", "right", 1), (60, "north", "east", "left", 1)]
    assert sum(c.count for r in outcome.reports for c in r.counts) == 4
    assert all(not r.unmatched for r in outcome.reports)


def test_a_movement_still_open_at_flush_is_closed_into_the_last_report() -> None:
    outcome = run([drive(route("south", "north"), 1)], tail_frames=1)
    (report,) = outcome.reports
    assert [(m.origin, m.destination, m.movement) for m in report.movements] == [
        ("south", "north", "through")
    ]


BREAKS: dict[str, tuple[int, int, int]] = {
    # sample the track is lost after, frames lost, frames both ids are seen
    "short gap in the middle": (30, 8, 0),
    "id switch just past the origin gate": (16, 1, 0),
    "id switch just short of the destination gate": (55, 1, 0),
    "lost for a second and a half": (27, 15, 0),
    "duplicate that outlives the first track": (40, 0, 2),
}


@pytest.mark.parametrize(("at", "gap", "overlap"), list(BREAKS.values()), ids=list(BREAKS))
def test_a_broken_track_keeps_its_movement(at: int, gap: int, overlap: int) -> None:
    path = drive(route("north", "south"), 1)
    outcome = run([broken(path, at, gap, new_id=2, overlap=overlap)])
    assert outcome.movements() == {("north", "south"): 1}
    assert outcome.unmatched() == {}
    assert outcome.reconciles()


def test_a_track_lost_too_long_leaves_two_unmatched_gates() -> None:
    path = drive(route("north", "south"), 1)
    outcome = run([broken(path, 16, 25, new_id=2)])
    assert outcome.movements() == {}
    assert outcome.unmatched() == {"north": 1, "south": 1}
    assert outcome.reconciles()


@pytest.mark.parametrize(
    ("edge", "view"), [(398, None), (348, (0, 0, 350, SIZE))], ids=["frame", "detected region"]
)
def test_a_vehicle_that_left_the_view_is_not_continued_by_one_coming_in(
    edge: float, view: tuple[float, float, float, float] | None
) -> None:
    """One leaves by the east edge of the frame (or of the region the detector looks at);
    another comes in there a moment later, where the first was heading. Two vehicles."""
    leaving = drive([*route("west", "east")[:-1], (edge, 210)], 1)
    coming = drive([(edge, 205), *route("east", "north")[1:]], 2, start=leaving[-1].frame + 2)
    outcome = run([leaving, coming], view=view)
    assert outcome.movements() == {("west", "east"): 1, ("east", "north"): 1}
    assert outcome.reconciles()


def test_an_id_swap_between_two_vehicles_keeps_every_gate_total() -> None:
    """Two vehicles meet in the middle and the tracker swaps their ids: the pairs come out
    wrong, but every gate's origins and destinations are right."""
    southbound = drive(route("north", "south"), 1)
    eastbound = drive(route("west", "east"), 2)
    swap = 30  # both are at the centre
    swapped = [
        Sample(s.frame, 3 - s.track_id if s.frame >= swap else s.track_id, s.point)
        for s in southbound + eastbound
    ]
    outcome = run([swapped])
    moves = outcome.movements()
    assert moves == {("north", "east"): 1, ("west", "south"): 1}
    assert Counter(o for o, _ in moves) == Counter(
        o for o, _ in run([southbound, eastbound]).movements()
    )
    assert outcome.reconciles()


@pytest.mark.parametrize(
    "gate_point", [(190, 100), (210, 300)], ids=["origin gate", "destination gate"]
)
def test_a_vehicle_standing_on_a_gate_counts_once_and_makes_no_u_turn(gate_point: Point) -> None:
    path = stop_on(drive(route("north", "south"), 1), gate_point, frames=80)
    outcome = run([path])
    assert outcome.lines == Counter({"north": 1, "south": 1})
    assert outcome.movements() == {("north", "south"): 1}
    assert outcome.reconciles()


def test_a_vehicle_parked_on_a_gate_is_unmatched_there() -> None:
    path = drive(route("north", "south"), 1)
    parked = stop_on(path, (190, 100), frames=60)[: 60 + 20]
    outcome = run([parked])
    assert outcome.movements() == {}
    assert outcome.unmatched() == {"north": 1}
    assert outcome.reconciles()


def test_a_u_turn_through_the_end_of_a_gate_is_no_u_turn() -> None:
    """Turning back round the end of the line, not over it: the vehicle left by no gate."""
    path = drive([(190, 20), (190, 170), (260, 170), (260, 20)], 1)
    outcome = run([path])
    assert outcome.movements() == {}
    assert outcome.unmatched() == {"north": 1}


@pytest.mark.parametrize(
    ("waypoints", "unmatched"),
    [
        ([(200, 200), *route("north", "south")[-2:]], {"south": 1}),  # first seen inside
        (route("north", "south")[:2], {"north": 1}),  # track ends inside (occluded, parked)
        ([(20, 20), (380, 20)], {}),  # passes beside every gate
    ],
    ids=["seen leaving only", "seen entering only", "no gate"],
)
def test_a_vehicle_seen_at_one_gate_is_unmatched_there(
    waypoints: list[Point], unmatched: dict[str, int]
) -> None:
    outcome = run([drive(waypoints, 1)])
    assert outcome.movements() == {}
    assert outcome.unmatched() == unmatched
    assert outcome.reconciles()


def test_a_vehicle_over_three_gates_moves_from_its_first_to_its_last() -> None:
    gates: dict[str, tuple[Point, Point]] = {**GATES, "middle": ((150, 200), (250, 200))}
    outcome = run([drive(route("north", "south"), 1)], gates=gates)
    assert outcome.movements() == {("north", "south"): 1}
    assert outcome.unmatched() == {"middle": 1}
    assert outcome.lines["middle"] == 1


def test_a_vehicle_held_past_the_longest_journey_is_closed_and_starts_again() -> None:
    """Parked between its gates for five minutes, still tracked: its first gate is closed
    unmatched after ``max_age_s``; the gate it leaves by later is unmatched too."""
    path = drive(route("north", "south"), 1)
    outcome = run([stop_on(path, (200, 200), frames=300 * FPS, jitter=0.5)])
    assert outcome.movements() == {}
    assert outcome.unmatched() == {"north": 1, "south": 1}
    assert outcome.reconciles()


def test_a_vehicle_takes_the_class_it_was_seen_as_most() -> None:
    path = drive(route("east", "west"), 1)
    flickering = [
        Sample(s.frame, s.track_id, s.point, "truck" if i % 4 else "car")
        for i, s in enumerate(path)
    ]
    outcome = run([flickering])
    assert outcome.tally.movements == Counter({("east", "west", "truck"): 1})


def test_classes_the_camera_does_not_count_make_no_movement() -> None:
    bus = [Sample(s.frame, s.track_id, s.point, "bus") for s in drive(route("east", "west"), 1)]
    outcome = run([bus, drive(route("west", "east"), 2)], counted=("car",))
    assert outcome.tally.movements == Counter({("west", "east", "car"): 1})
    assert outcome.reconciles()


def test_nothing_is_held_after_the_vehicles_are_closed_or_flushed() -> None:
    stage = MovementTracker(VEHICLE_CLASSES)
    counter = LineCounter(
        [PixelLine.from_config(CountLine(name="north", points=GATES["north"]), (1, 1))]
    )
    for s in drive(route("north", "south"), 7):
        meta = FrameMeta(s.frame, s.frame / FPS, SIZE, SIZE)
        x, y = s.point
        tracks = Tracks(
            meta, np.array([7]), np.array([[x - 10, y - 10, x + 10, y + 10]], np.float32), ("car",)
        )
        stage.update(tracks, counter.passages(tracks), {7})
    assert stage.flush().unmatched == Counter({("north", "car"): 1})
    assert (stage._journeys, stage._ended, stage._handed_on) == ({}, [], set())


LEG_NAMES = list(LEGS)


@st.composite
def scene(draw: st.DrawFn) -> list[list[Sample]]:
    """Up to eight vehicles on random routes and times, some broken, some stopping on a
    gate, some seen only in part."""
    vehicles = []
    next_id = 1
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        path = drive(
            route(draw(st.sampled_from(LEG_NAMES)), draw(st.sampled_from(LEG_NAMES))),
            next_id,
            start=draw(st.integers(min_value=0, max_value=150)),
            step=draw(st.floats(min_value=3, max_value=25)),
        )
        next_id += 1
        if draw(st.booleans()):
            gate = draw(st.sampled_from(LEG_NAMES))
            path = stop_on(
                path,
                LEGS[gate][1] if draw(st.booleans()) else GATES[gate][0],
                draw(st.integers(1, 40)),
            )
        first = draw(st.integers(min_value=0, max_value=len(path) - 2))
        last = draw(st.integers(min_value=first + 1, max_value=len(path)))
        path = path[first:last] if draw(st.booleans()) else path
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            if len(path) > 3:
                at = draw(st.integers(min_value=0, max_value=len(path) - 3))
                path = broken(
                    path, at, draw(st.integers(0, 25)), 1000 + next_id, draw(st.integers(0, 3))
                )
                next_id += 1
        vehicles.append(path)
    return vehicles


@settings(max_examples=150, deadline=None)
@given(vehicles=scene())
def test_movements_always_reconcile_with_the_line_counts(vehicles: list[list[Sample]]) -> None:
    outcome = run(vehicles)
    assert outcome.reconciles()
    for (origin, destination), n in outcome.movements().items():
        assert n <= min(outcome.lines[origin], outcome.lines[destination])
    counted = sum(c.count for r in outcome.reports for c in r.counts)
    moved = sum(m.count for r in outcome.reports for m in r.movements)
    unmatched = sum(u.count for r in outcome.reports for u in r.unmatched)
    assert counted == sum(outcome.lines.values())
    assert (moved, unmatched) == (
        sum(outcome.tally.movements.values()),
        sum(outcome.tally.unmatched.values()),
    )


DEMO_SETUP = CameraSetup.model_validate(
    yaml.safe_load((REPO_ROOT / "tally_demo" / "intersection.yaml").read_text(encoding="utf-8"))
)
DEMO_LINES = [{"name": x.name, "coords": [*x.points[0], *x.points[1]]} for x in DEMO_SETUP.lines]
URBAN = VIDEO / "urban_intersection_640x480.mp4"


def assert_plausible_junction(
    totals: dict[str, int], moves: dict[tuple[str, str], int], unmatched: dict[str, int]
) -> None:
    """Reconciles per gate, no movement above its smaller gate, and the clip's main flows."""
    for gate in totals:
        out = sum(n for (o, _), n in moves.items() if o == gate)
        into = sum(n for (o, d), n in moves.items() if d == gate != o)
        assert totals[gate] == out + into + unmatched.get(gate, 0), gate
    for (origin, destination), n in moves.items():
        assert n <= min(totals[origin], totals[destination])
    assert len({o for o, _ in moves}) >= 3
    assert sum(moves.values()) >= 10
    assert moves.get(("east", "north"), 0) >= 3  # the busiest turn of the clip
    assert sum(unmatched.values()) <= sum(moves.values())


@pytest.mark.slow
def test_count_movements_on_the_shared_intersection_clip(tmp_path: Path) -> None:
    """`count --movements --json` through the real model, with the demo's four gates."""
    completed = subprocess.run(
        [*count_command(URBAN, DEMO_LINES, MODEL), "--movements"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=600,
        env={**os.environ, "TALLY_MODEL_CACHE": str(tmp_path / "cache")},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    assert set(result["unmatched"]) == {line.name for line in DEMO_SETUP.lines}
    for move in result["movements"]:
        assert move["total"] == sum(move["by_class"].values())
    assert_plausible_junction(
        {gate: line["total"] for gate, line in result["lines"].items()},
        {(m["origin"], m["destination"]): m["total"] for m in result["movements"]},
        result["unmatched"],
    )


@pytest.mark.slow
def test_the_demo_set_up_reports_named_movements(tmp_path: Path) -> None:
    """The worker's engine with the demo set-up: the interval reports carry the movements,
    named from the layout, and the unmatched crossings; nothing else per vehicle."""
    detector = VehicleDetector(ModelSettings(cache_dir=tmp_path), str(MODEL))
    replay = count(load_clip(URBAN, DEMO_LINES), detector, **DEMO_SETUP.model_dump())
    totals: Counter[str] = Counter()
    for (line, _, _), n in replay.pipeline.totals.items():
        totals[line] += n
    moves: Counter[tuple[str, str]] = Counter()
    unmatched: Counter[str] = Counter()
    for report in replay.reports:
        for m in report.movements:
            assert m.movement == JUNCTION.movement(m.origin, m.destination)
            moves[(m.origin, m.destination)] += m.count
        for u in report.unmatched:
            unmatched[u.gate] += u.count
    assert moves == Counter(
        {(o, d): n for (o, d, _), n in replay.pipeline.movement_totals.movements.items()}
    )
    assert_plausible_junction(dict(totals), dict(moves), dict(unmatched))
    assert any(z.zone == "junction" and z.max_vehicles for r in replay.reports for z in r.zones)
