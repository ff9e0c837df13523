"""Counting stage: Tracks -> Crossings of directed count lines.

Rule (the same one the reference counts use): a vehicle counts once when the centre of its
box crosses the line *segment* between two analysed frames. A track is counted at most once
per line; its direction is the geometric side it moved to. A track first seen past the
line is not counted, because it never crossed in view.

Direction labels are geometric in image coordinates: for a line that is more horizontal
than vertical, ``down`` (towards larger y) and ``up``; otherwise ``right`` and ``left``.
Sites rename them (``direction_names``), e.g. ``down -> southbound``.

For the movements stage the counter also reports, per track, when a counted vehicle crosses
the same line back (a U-turn) or forward again, with hysteresis: only positions more than
half the box's smaller side from the line count, so a vehicle standing on a line never does.
These passages count nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from contract.camera import CountLine
from detector.currency import Crossing, FloatArray, Passage, Tracks

Vector = tuple[float, float]


@dataclass(frozen=True, slots=True)
class PixelLine:
    """A count line in frame pixels, with the labels of its two crossing directions."""

    name: str
    start: Vector
    end: Vector
    positive_label: str
    negative_label: str

    @classmethod
    def from_config(cls, line: CountLine, scale: tuple[float, float]) -> PixelLine:
        """Scale configured coordinates to pixels and orient the normal geometrically."""
        (x1, y1), (x2, y2) = line.points
        start = (x1 * scale[0], y1 * scale[1])
        end = (x2 * scale[0], y2 * scale[1])
        positive, negative = line.crossing_directions(scale)
        if (positive == "down" and end[0] < start[0]) or (positive == "left" and end[1] < start[1]):
            start, end = end, start
        names = line.direction_names
        return cls(
            line.name, start, end, names.get(positive, positive), names.get(negative, negative)
        )

    def side(self, points: FloatArray) -> FloatArray:
        """Signed distance of points from the infinite line; >= 0 is the positive side.

        Start and end are ordered (left to right, or top to bottom) so that the positive
        side is below a horizontal line and left of a vertical one.
        """
        (x1, y1), (x2, y2) = self.start, self.end
        dx, dy = x2 - x1, y2 - y1
        length = float(np.hypot(dx, dy))
        cross = dx * (points[:, 1] - y1) - dy * (points[:, 0] - x1)
        return (cross / length).astype(np.float32)

    def along(self, point_a: Vector, point_b: Vector) -> float:
        """Where the motion a->b meets the line, as a fraction of the segment (0..1 = on it)."""
        (x1, y1), (x2, y2) = self.start, self.end
        ax, ay = point_a
        rx, ry = point_b[0] - ax, point_b[1] - ay
        sx, sy = x2 - x1, y2 - y1
        denominator = sx * ry - sy * rx
        if denominator == 0:
            return float(((ax - x1) * sx + (ay - y1) * sy) / (sx * sx + sy * sy))
        return float(((ax - x1) * ry - (ay - y1) * rx) / denominator)


@dataclass(slots=True)
class _Settled:
    """The side (+1 or -1) of one line a counted track last stood clear of, and whether it
    last went over the line through its segment (rather than round its end)."""

    side: int
    through: bool = True


@dataclass(slots=True)
class _TrackState:
    """What the counter remembers of one track: its last centre, the lines it was counted on
    and, per such line, the side it last stood clear of it on."""

    centre: Vector
    counted_on: set[str] = field(default_factory=set)
    settled: dict[str, _Settled] = field(default_factory=dict)


class LineCounter:
    """Counts directed crossings of any number of lines; one instance per camera."""

    def __init__(self, lines: list[PixelLine], segment_tolerance: float = 0.02) -> None:
        self.lines = lines
        self.segment_tolerance = segment_tolerance
        self._tracks: dict[int, _TrackState] = {}

    def update(self, tracks: Tracks) -> list[Crossing]:
        """Advance every track by one analysed frame and return the new crossings."""
        return [p.crossing for p in self.passages(tracks) if p.counted]

    def passages(self, tracks: Tracks) -> list[Passage]:
        """Like ``update``, with the track of each crossing and the uncounted passages back
        and forth over lines already counted (for the movements stage)."""
        centre_array = tracks.centres()
        centres = [(float(x), float(y)) for x, y in centre_array]
        clearances = (
            np.minimum(tracks.xyxy[:, 2] - tracks.xyxy[:, 0], tracks.xyxy[:, 3] - tracks.xyxy[:, 1])
            / 2
        ).tolist()
        track_ids = tracks.track_id.tolist()
        passages: list[Passage] = []
        for line in self.lines:
            sides = line.side(centre_array)
            for i, track_id in enumerate(track_ids):
                side = float(sides[i])
                direction = self._crossed(line, track_id, centres[i], side)
                counted = direction is not None
                if direction is None:
                    direction = self._passed_again(line, track_id, centres[i], side, clearances[i])
                if direction is not None:
                    crossing = Crossing(
                        line.name, direction, tracks.vehicle_class[i], tracks.meta.timestamp_s
                    )
                    passages.append(Passage(track_id, crossing, counted))
        for track_id, centre in zip(track_ids, centres, strict=True):
            state = self._tracks.get(track_id)
            if state is None:
                self._tracks[track_id] = _TrackState(centre)
            else:
                state.centre = centre
        return passages

    def _crossed(
        self, line: PixelLine, track_id: int, centre: Vector, side_now: float
    ) -> str | None:
        state = self._tracks.get(track_id)
        if state is None or line.name in state.counted_on:
            return None
        side_before = float(line.side(np.array([state.centre], dtype=np.float32))[0])
        moved_positive = side_before < 0 <= side_now
        moved_negative = side_before > 0 >= side_now
        if not (moved_positive or moved_negative) or not self._on_segment(
            line, state.centre, centre
        ):
            return None
        state.counted_on.add(line.name)
        state.settled[line.name] = _Settled(1 if moved_positive else -1)
        return line.positive_label if moved_positive else line.negative_label

    def _on_segment(self, line: PixelLine, point_a: Vector, point_b: Vector) -> bool:
        """The motion a->b meets the line on its segment (within the tolerance)."""
        t = line.along(point_a, point_b)
        return -self.segment_tolerance <= t <= 1 + self.segment_tolerance

    def _passed_again(
        self, line: PixelLine, track_id: int, centre: Vector, side_now: float, clearance: float
    ) -> str | None:
        """The direction a counted track went over its line's segment in once more, judged
        on positions clear of the line (so jitter on it never passes), else None."""
        state = self._tracks.get(track_id)
        settled = state.settled.get(line.name) if state else None
        if state is None or settled is None:
            return None
        side_before = float(line.side(np.array([state.centre], dtype=np.float32))[0])
        if side_before < 0 <= side_now or side_before > 0 >= side_now:
            settled.through = self._on_segment(line, state.centre, centre)
        side = 1 if side_now > 0 else -1
        if abs(side_now) <= clearance or side == settled.side:
            return None
        settled.side = side
        if not settled.through:
            return None  # went round the end of the line
        return line.positive_label if side > 0 else line.negative_label

    def forget(self, live_track_ids: set[int]) -> None:
        """Drop state of tracks the tracker no longer holds (bounded memory)."""
        for track_id in self._tracks.keys() - live_track_ids:
            del self._tracks[track_id]
