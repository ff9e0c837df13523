"""Movements stage: each vehicle's first and last gate -> turning-movement counts.

Gates are the camera's count lines. For each track, in memory only, the stage keeps the
gates it passed, in order: its counted crossing of each line (``detector.count``) and any
passage back over a line it was counted on (a U-turn). When the vehicle is closed it adds
one to (first gate, last gate, class), and every counted crossing that is no end of that
movement (the one gate of a vehicle seen at one gate only, a gate passed between its first
and last, a repeat) is ``unmatched`` at its gate. So for every gate G, over the vehicles
closed, exactly:

    line total(G) = movements from G + movements into G from another gate + unmatched(G)

(a U-turn at G crossed G twice, but the line counts it once, and so does its movement G->G).
Hence also no movement count exceeds the smaller of its two gates' totals.

A vehicle is closed ``stitch_gap_s`` after its track was last seen, once the tracker has let
it go; ``max_age_s`` after its first gate even while tracked (a car parked between gates: its
later gates start a new journey); and when the stage is flushed (stream end, reconfigure).
A broken track (occlusion, an id switch near a gate) is stitched: when a track with gates
vanishes short of the edge of the view (the frame, or the region the detector looks at), a
track of the same class born up to ``stitch_gap_s`` after it was last seen (or
``stitch_overlap_s`` before: a duplicate that outlived it) within ``stitch_reach`` box
diagonals of where it was heading takes over its gates. A wrong stitch,
or an id swap between two vehicles, can pair an origin with the wrong destination; it never
loses or adds a crossing, and a swap keeps every gate's origin and destination totals.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence, Set
from dataclasses import dataclass, field

from contract import VehicleClass
from detector.currency import MovementTally, Passage, Tracks

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class MovementSettings:
    """How long a vehicle may take between its gates, and how broken tracks are joined."""

    max_age_s: float = 180.0
    """Longer than a red light at a big junction; a vehicle still tracked is closed then."""
    stitch_gap_s: float = 2.0
    """A track that vanished this long ago may still be continued by a new one."""
    stitch_overlap_s: float = 0.5
    """A continuation may have been born this long before the vanished track was last seen."""
    stitch_reach: float = 1.0
    """How far, in diagonals of its last box, a continuation may be born from where the
    vanished track was heading."""
    edge_margin: float = 0.02
    """A box this close (share of the view) to its edge left the view: it is not continued."""


@dataclass(slots=True, eq=False)
class _Journey:
    """One vehicle so far: its gates, class votes, where it was born and last seen."""

    box: Box
    seen_s: float
    born: tuple[float, float, float] | None
    """Time and centre of the track's first box; None once it continues another journey (or
    for a track whose journey went on in another: it is never a continuation)."""
    gates: list[Passage] = field(default_factory=list)
    first_gate_s: float = 0.0
    votes: Counter[VehicleClass] = field(default_factory=Counter)
    velocity: tuple[float, float] = (0.0, 0.0)
    """Centre speed in pixels per second (smoothed)."""
    at_edge: bool = False

    def centre(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2, (y1 + y2) / 2

    def leading_class(self) -> VehicleClass:
        return self.votes.most_common(1)[0][0]

    def take_over(self, continuation: _Journey) -> None:
        """Go on as ``continuation`` (a later track of the same vehicle), with both tracks'
        gates in time order."""
        self.gates = sorted(self.gates + continuation.gates, key=lambda p: p.crossing.timestamp_s)
        self.votes.update(continuation.votes)
        self.box, self.seen_s = continuation.box, continuation.seen_s
        self.velocity, self.at_edge = continuation.velocity, continuation.at_edge
        self.born = None


class MovementTracker:
    """Closes vehicles into movement counts; one instance per camera and configuration."""

    def __init__(
        self,
        counted_classes: Collection[VehicleClass],
        settings: MovementSettings | None = None,
        view: Box | None = None,
    ) -> None:
        self.settings = settings or MovementSettings()
        self._counted = frozenset(counted_classes)
        self.view = view
        """The part of the frame vehicles are detected in (default: the whole frame)."""
        self._journeys: dict[int, _Journey] = {}
        """By track id, while the tracker holds the track."""
        self._ended: list[_Journey] = []
        """Tracks the tracker let go, waiting ``stitch_gap_s`` for a continuation."""
        self._handed_on: set[int] = set()
        """Held ids whose journey a newer track took over: if one comes back, it starts afresh."""

    def update(self, tracks: Tracks, passages: Sequence[Passage], live: Set[int]) -> MovementTally:
        """Take one analysed frame's tracks and gate passages; ``live`` are the ids the
        tracker still holds. Returns the vehicles closed now."""
        now = tracks.meta.timestamp_s
        view = self.view or (0.0, 0.0, float(tracks.meta.width), float(tracks.meta.height))
        visible = tracks.track_id.tolist()
        for i, track_id in enumerate(visible):
            x1, y1, x2, y2 = (float(v) for v in tracks.xyxy[i])
            box = (x1, y1, x2, y2)
            journey = self._journeys.get(track_id)
            if journey is None:
                born = None if track_id in self._handed_on else (now, (x1 + x2) / 2, (y1 + y2) / 2)
                journey = self._journeys[track_id] = _Journey(box, now, born)
            self._observe(journey, box, tracks.vehicle_class[i], now, view)
        for passage in passages:
            journey = self._journeys.get(passage.track_id)
            if journey is not None:
                self._pass(journey, passage, now)
        self._stitch(now, set(visible))
        for track_id in self._journeys.keys() - live:
            journey = self._journeys.pop(track_id)
            if journey.gates:
                self._ended.append(journey)
        self._handed_on &= set(live)
        return self._close_due(now)

    def flush(self) -> MovementTally:
        """Close every vehicle held and forget them all (stream end, reconfigure)."""
        tally = MovementTally()
        for journey in [*self._journeys.values(), *self._ended]:
            tally.add(self._close(journey))
        self._journeys.clear()
        self._ended.clear()
        self._handed_on.clear()
        return tally

    def _stitch(self, now: float, visible: set[int]) -> None:
        """Let each vanished vehicle with gates go on as the visible young track that fits it
        best: nearest to where it was heading, nearest first."""
        settings = self.settings
        vanished: list[tuple[int | None, _Journey]] = [
            (i, j) for i, j in self._journeys.items() if i not in visible
        ]
        vanished += [(None, j) for j in self._ended]
        donors = [
            (i, j)
            for i, j in vanished
            if j.gates and not j.at_edge and now - j.seen_s <= settings.stitch_gap_s
        ]
        young = [(i, j, j.born) for i, j in self._journeys.items() if i in visible and j.born]
        pairs: list[tuple[float, int | None, _Journey, int, _Journey]] = []
        for donor_id, donor in donors:
            x1, y1, x2, y2 = donor.box
            reach = settings.stitch_reach * math.hypot(x2 - x1, y2 - y1)
            cx, cy = donor.centre()
            for young_id, journey, (born_s, x, y) in young:
                gap = born_s - donor.seen_s
                if (
                    -settings.stitch_overlap_s <= gap <= settings.stitch_gap_s
                    and journey.leading_class() == donor.leading_class()
                ):
                    distance = math.hypot(
                        x - cx - donor.velocity[0] * gap, y - cy - donor.velocity[1] * gap
                    )
                    if distance <= reach:
                        pairs.append((distance, donor_id, donor, young_id, journey))
        taken: set[int] = set()
        for _, donor_id, donor, young_id, journey in sorted(pairs, key=lambda pair: pair[0]):
            if id(donor) in taken or id(journey) in taken:
                continue
            taken |= {id(donor), id(journey)}
            donor.take_over(journey)
            self._journeys[young_id] = donor
            if donor_id is None:
                self._ended.remove(donor)
            else:
                del self._journeys[donor_id]
                self._handed_on.add(donor_id)

    def _observe(
        self,
        journey: _Journey,
        box: Box,
        vehicle_class: VehicleClass,
        now: float,
        view: Box,
    ) -> None:
        dt = now - journey.seen_s
        if dt > 0:
            (cx, cy), x, y = journey.centre(), (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            step = ((x - cx) / dt, (y - cy) / dt)
            old = journey.velocity if journey.votes.total() > 1 else step
            journey.velocity = ((old[0] + step[0]) / 2, (old[1] + step[1]) / 2)
        journey.box, journey.seen_s = box, now
        journey.votes[vehicle_class] += 1
        left, top, right, bottom = view
        margin_x = self.settings.edge_margin * (right - left)
        margin_y = self.settings.edge_margin * (bottom - top)
        journey.at_edge = right > left and (
            box[0] <= left + margin_x
            or box[1] <= top + margin_y
            or box[2] >= right - margin_x
            or box[3] >= bottom - margin_y
        )

    def _pass(self, journey: _Journey, passage: Passage, now: float) -> None:
        """Add a gate; a passage forward again over a gate cancels the last one back over it."""
        crossing = passage.crossing
        if passage.counted:
            if crossing.vehicle_class not in self._counted:
                return  # the line does not count it either
            if not journey.gates:
                journey.first_gate_s = now
            journey.gates.append(passage)
            return
        at_gate = [p for p in journey.gates if p.crossing.line == crossing.line]
        counted = [p for p in at_gate if p.counted]
        if not counted:
            return  # its crossing there closed an earlier journey, or was not counted
        if crossing.direction != counted[-1].crossing.direction:
            journey.gates.append(passage)
        elif not at_gate[-1].counted:
            journey.gates.remove(at_gate[-1])

    def _close_due(self, now: float) -> MovementTally:
        tally = MovementTally()
        waiting = [j for j in self._ended if now - j.seen_s < self.settings.stitch_gap_s]
        for journey in self._ended:
            if journey not in waiting:
                tally.add(self._close(journey))
        self._ended = waiting
        for journey in self._journeys.values():
            if journey.gates and now - journey.first_gate_s > self.settings.max_age_s:
                tally.add(self._close(journey))
                journey.gates = []
        return tally

    def _close(self, journey: _Journey) -> MovementTally:
        """One vehicle's movement (first gate -> last gate) and its other counted crossings."""
        tally = MovementTally()
        counted = [p for p in journey.gates if p.counted]
        if not counted:
            return tally
        vehicle_class = self._class_of(journey, counted)
        first, last = counted[0], journey.gates[-1]
        origin, destination = first.crossing.line, last.crossing.line
        others = counted[1:]
        if destination != origin or last.crossing.direction != first.crossing.direction:
            tally.movements[(origin, destination, vehicle_class)] += 1
            if destination != origin:  # the destination's counted crossing is the movement's
                others.remove([p for p in others if p.crossing.line == destination][-1])
        else:
            others = counted
        for passage in others:
            tally.unmatched[(passage.crossing.line, vehicle_class)] += 1
        return tally

    def _class_of(self, journey: _Journey, counted: list[Passage]) -> VehicleClass:
        """The class the tracker voted most often over the vehicle's life, among the classes
        counted; else the class its last gate counted it as."""
        votes = [(c, n) for c, n in journey.votes.most_common() if c in self._counted]
        return votes[0][0] if votes else counted[-1].crossing.vehicle_class
