"""Planning figures both sides derive the same way: turning movements from an intersection
layout, and passenger-car units (PCU) per vehicle class.

The worker uses them to name each movement it counts and to weigh density and level of
service; the API uses them to label TMC tables and to serve PCU totals. One rule, one home.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.report import VEHICLE_CLASSES, Label, Movement, VehicleClass

MAX_LEGS = 8
THROUGH_WITHIN_DEG = 45.0
"""A movement that turns by at most this much is 'through'."""
U_TURN_BEYOND_DEG = 150.0
"""A movement between two different legs that turns by more than this is a U-turn."""

DEFAULT_PCU: dict[VehicleClass, float] = {
    "car": 1.0,
    "motorcycle": 0.4,
    "bus": 2.0,
    "truck": 2.5,
    "bicycle": 0.2,
}
"""Passenger-car units per class (HCM / UK DMRB orders of magnitude); a camera may override."""


class PlanningModel(BaseModel):
    """Base of the planning sections: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Leg(PlanningModel):
    """One approach of an intersection: the gate (a count line) vehicles use on that leg."""

    gate: Label = Field(title="Count line that is this leg's gate")
    bearing_deg: float = Field(
        ge=0, lt=360, title="Compass bearing from the intersection centre out along the leg"
    )


class Intersection(PlanningModel):
    """Which gate is which leg, so every origin -> destination pair gets a movement name."""

    legs: list[Leg] = Field(min_length=2, max_length=MAX_LEGS, title="Legs, one per gate")

    @model_validator(mode="after")
    def one_leg_per_gate(self) -> Self:
        """A gate on two legs would make its movements ambiguous."""
        gates = [leg.gate for leg in self.legs]
        if len(gates) != len(set(gates)):
            raise ValueError("each gate belongs to one leg only")
        return self

    def bearing_of(self, gate: str) -> float | None:
        """The leg bearing of a gate, or None for a gate that is no leg."""
        return next((leg.bearing_deg for leg in self.legs if leg.gate == gate), None)

    def movement(self, origin: str, destination: str) -> Movement | None:
        """left / through / right / u_turn for a vehicle entering by ``origin`` and leaving by
        ``destination``; None where either gate is no leg of the layout."""
        origin_bearing = self.bearing_of(origin)
        destination_bearing = self.bearing_of(destination)
        if origin_bearing is None or destination_bearing is None:
            return None
        if origin == destination:
            return "u_turn"
        return movement_of_turn(turn_angle_deg(origin_bearing, destination_bearing))


def turn_angle_deg(origin_bearing: float, destination_bearing: float) -> float:
    """Signed heading change in (-180, 180]: positive is clockwise (a right turn).

    A vehicle from the leg at ``origin_bearing`` drives towards the centre, heading the
    opposite way, and leaves along the destination leg, heading ``destination_bearing``.
    """
    heading_in = (origin_bearing + 180.0) % 360.0
    turn = (destination_bearing - heading_in) % 360.0
    return turn - 360.0 if turn > 180.0 else turn


def movement_of_turn(turn_deg: float) -> Movement:
    """Name a heading change between two different legs."""
    if abs(turn_deg) <= THROUGH_WITHIN_DEG:
        return "through"
    if abs(turn_deg) > U_TURN_BEYOND_DEG:
        return "u_turn"
    return "right" if turn_deg > 0 else "left"


class PcuFactors(PlanningModel):
    """Passenger-car units per class, for density, level of service and PCU totals."""

    car: float = Field(default=DEFAULT_PCU["car"], gt=0, le=10, title="Car")
    motorcycle: float = Field(default=DEFAULT_PCU["motorcycle"], gt=0, le=10, title="Motorcycle")
    bus: float = Field(default=DEFAULT_PCU["bus"], gt=0, le=10, title="Bus")
    truck: float = Field(default=DEFAULT_PCU["truck"], gt=0, le=10, title="Truck")
    bicycle: float = Field(default=DEFAULT_PCU["bicycle"], gt=0, le=10, title="Bicycle")

    def of(self, vehicle_class: VehicleClass) -> float:
        """The factor of one class."""
        factor: float = getattr(self, vehicle_class)
        return factor

    def total(self, counts: Mapping[VehicleClass, float]) -> float:
        """PCU of a count per class."""
        return sum(self.of(c) * counts.get(c, 0) for c in VEHICLE_CLASSES)
