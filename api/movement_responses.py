"""Response bodies of the turning-movement endpoints (shapes: docs/api-planner.md, "Turning
movements")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.responses import CoveredBucket, Licence, PeakHour, Ranged
from contract import Movement

Bin = Literal["15min", "1h"]
Compass = Literal["N", "E", "S", "W"]


class LegOut(BaseModel):
    """One leg of the camera's intersection layout."""

    gate: str = Field(title="Count line that is the leg's gate")
    bearing_deg: float = Field(title="Compass bearing from the centre out along the leg")
    compass: Compass = Field(title="Nearest compass point of the leg (N: the north leg)")


class MovementTotals(BaseModel):
    """Totals of one movement, approach or the intersection over the window."""

    total: int | None = Field(ge=0, title="Vehicles in covered bins; null when none covered")
    pcu: float | None = Field(ge=0, title="Passenger-car units (the camera's PCU factors)")
    by_class: dict[str, int] = Field(title="Vehicles per class (the classes asked for)")
    heavy: int | None = Field(ge=0, title="Buses and trucks")
    heavy_share: float | None = Field(ge=0, le=1, title="heavy / total; null when total is 0")


class MovementSeries(MovementTotals):
    """One origin -> destination movement: a count per bin, null where no report covers it."""

    origin: str = Field(title="Gate the vehicles entered by (the approach)")
    destination: str = Field(title="Gate the vehicles left by")
    movement: Movement | None = Field(title="Turn from the layout; null without one")
    counts: list[int | None] = Field(title="Vehicles per bin; null: a gap, not zero")


class ApproachSeries(MovementTotals):
    """Every movement entering by one gate."""

    origin: str
    counts: list[int | None]


class IntersectionSeries(MovementTotals):
    """Every movement of the camera."""

    counts: list[int | None]


class UnmatchedSeries(BaseModel):
    """Vehicles seen at one gate only (their other gate was not seen), per bin."""

    gate: str
    counts: list[int | None]
    total: int | None = Field(ge=0)


class TmcOut(Ranged):
    """A turning-movement count table of one camera."""

    site: str
    camera: str
    timezone: str
    bin: Bin
    vehicle_class: str | None = Field(title="Class filter; null: every class")
    layout: bool = Field(title="Movements are named from an intersection layout")
    legs: list[LegOut]
    pcu_factors: dict[str, float]
    bins: list[CoveredBucket]
    movements: list[MovementSeries]
    approaches: list[ApproachSeries]
    intersection: IntersectionSeries
    unmatched: list[UnmatchedSeries]


class PeakFactor(BaseModel):
    """Volume of the intersection's peak hour and its peak-hour factor."""

    volume: int = Field(ge=0, title="Vehicles in the peak hour")
    max_15min_volume: int = Field(ge=0, title="Busiest 15 minutes of the peak hour")
    phf: float | None = Field(title="volume / (4 x max_15min_volume); null when no traffic")
    pcu: float = Field(ge=0, title="Passenger-car units in the peak hour")
    heavy: int = Field(ge=0, title="Buses and trucks in the peak hour")
    heavy_share: float | None = Field(ge=0, le=1, title="heavy / volume")


class MovementPeak(PeakFactor):
    origin: str
    destination: str
    movement: Movement | None


class ApproachPeak(PeakFactor):
    origin: str


class MovementPeakOut(Ranged):
    """The intersection's peak hour in the window, with PHF per movement and approach."""

    site: str
    camera: str
    timezone: str
    vehicle_class: str | None
    peak_hour: PeakHour | None = Field(title="Busiest four consecutive covered 15-minute bins")
    coverage: float | None = Field(ge=0, le=1, title="Mean coverage of the peak hour's bins")
    intersection: PeakFactor | None
    approaches: list[ApproachPeak]
    movements: list[MovementPeak]


class OpenMovementRow(BaseModel):
    """One published movement count (small counts withheld as in the count feed)."""

    camera: str
    origin: str
    destination: str
    movement: Movement | None
    vehicle_class: str
    interval_start: datetime
    interval_end: datetime
    count: int | None = Field(ge=0, title="As in the count feed: null when withheld")
    coverage: float = Field(ge=0, le=1)
    suppressed: bool


class OpenMovements(Ranged):
    """Published turning movements of one site."""

    licence: Licence
    attribution: str
    site: str
    granularity: Bin
    rows: list[OpenMovementRow]
