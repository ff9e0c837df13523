"""The typed hand-offs between pipeline stages.

source -> ``Frame`` -> detect -> ``Detections`` -> track -> ``Tracks`` -> count / congestion
-> ``Crossing`` / ``ZoneSample`` -> aggregate -> ``IntervalReport`` (contract) -> outbox -> uplink;
count -> ``Passage`` -> movements -> ``MovementTally`` -> aggregate.

Only ``Frame`` carries pixels, and only the detect stage receives it: every later stage
works on boxes, and nothing after ``aggregate`` holds anything per vehicle.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from contract import VehicleClass

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class FrameMeta:
    """Where a frame sits in its stream. ``timestamp_s`` is stream time, never wall time."""

    index: int
    timestamp_s: float
    width: int
    height: int


@dataclass(slots=True)
class Frame:
    """Decoded pixels. Lives only from ``source`` to ``detect`` and is dropped right after."""

    meta: FrameMeta
    image: npt.NDArray[np.uint8] = field(repr=False)


def _empty_boxes() -> FloatArray:
    return np.zeros((0, 4), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Detections:
    """Vehicle boxes of one frame in native-resolution pixels (x1, y1, x2, y2)."""

    meta: FrameMeta
    xyxy: FloatArray = field(default_factory=_empty_boxes)
    confidence: FloatArray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    vehicle_class: tuple[VehicleClass, ...] = ()

    def __len__(self) -> int:
        return len(self.vehicle_class)


@dataclass(frozen=True, slots=True)
class Tracks:
    """Confirmed tracks of one frame. Ids are throw-away and never leave the process."""

    meta: FrameMeta
    track_id: IntArray
    xyxy: FloatArray
    vehicle_class: tuple[VehicleClass, ...]

    def __len__(self) -> int:
        return len(self.vehicle_class)

    def centres(self) -> FloatArray:
        """Box centres, the point the counting rule follows."""
        return np.column_stack(
            ((self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2)
        ).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Crossing:
    """One vehicle crossed one line. Carries no id or position: only what gets counted."""

    line: str
    direction: str
    vehicle_class: VehicleClass
    timestamp_s: float


@dataclass(frozen=True, slots=True)
class Passage:
    """A track passing a line, for the movements stage only: the id never leaves it.

    ``counted``: the line's one counted crossing of this track; otherwise the track crossed
    the line again after it was counted (back, or forward once more), which counts nothing.
    """

    track_id: int
    crossing: Crossing
    counted: bool


@dataclass(slots=True)
class MovementTally:
    """Vehicles closed by the movements stage: per (origin, destination, class), and per
    (gate, class) the counted crossings that are no end of a movement. No id, no path."""

    movements: Counter[tuple[str, str, VehicleClass]] = field(default_factory=Counter)
    unmatched: Counter[tuple[str, VehicleClass]] = field(default_factory=Counter)

    def add(self, other: MovementTally) -> None:
        """Add another tally into this one."""
        self.movements.update(other.movements)
        self.unmatched.update(other.unmatched)


@dataclass(frozen=True, slots=True)
class ZoneSample:
    """Aggregate state of one zone in one analysed frame (no per-vehicle data)."""

    zone: str
    timestamp_s: float
    vehicles: int
    area_share: float
    speeds_kmh: tuple[float, ...]
    """Passage speeds of the vehicles that left the zone in this frame (calibrated only)."""
    stopped: int
    queue_vehicles: int
    queue_m: float | None
    density_veh_km_lane: float | None
    density_pcu_km_lane: float | None
