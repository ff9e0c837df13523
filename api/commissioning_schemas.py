"""Request and response bodies of the commissioning endpoints: scene maps, the live check and
validation tallies (the scene map itself is `contract.scene.SceneMap`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from api.schemas import ApiModel
from contract import VEHICLE_CLASSES, VehicleClass
from contract.camera import MAX_LINES
from contract.report import LABEL_PATTERN
from contract.scene import SceneMap

ValidationStatus = Literal["open", "finished", "cancelled"]
MAX_TALLY = 100_000
"""Taps one person can make in two hours, with room to spare."""
MAX_TALLY_KEYS = MAX_LINES * 2 * len(VEHICLE_CLASSES)
"""Every line, both of its directions, every class."""
LABEL = LABEL_PATTERN.strip("^$")
TallyKey = Annotated[
    str,
    StringConstraints(pattern=rf"^{LABEL}/{LABEL}/({'|'.join(VEHICLE_CLASSES)})$"),
]
"""``line/direction/class``, e.g. ``main/northbound/car``."""
TallyCount = Annotated[int, Field(strict=True, ge=0, le=MAX_TALLY)]


class SceneMapReceipt(BaseModel):
    """What the API stored of a worker's scene map."""

    camera_id: str = Field(title="Camera")
    received_at: datetime = Field(title="When the API stored it")
    cells: int = Field(title="Grid cells the map shows")


class SceneMapRequested(BaseModel):
    """A pending request for a fresh scene map (the worker sees it in its heartbeat reply)."""

    requested_at: datetime = Field(title="When the pending request was made")


class SceneMapOut(BaseModel):
    """The newest scene map of a camera."""

    received_at: datetime = Field(title="When the API stored it")
    requested_at: datetime | None = Field(title="A pending request for a fresher map, if any")
    scene_map: SceneMap = Field(title="The map, as the worker sent it")


class LineCount(BaseModel):
    """Vehicles of every class that crossed one line in one direction."""

    line: str = Field(title="Count line")
    direction: str = Field(title="Direction label")
    count: int = Field(title="Vehicles")


class LiveInterval(BaseModel):
    """One stored report of the live window."""

    start: datetime = Field(title="Interval start, UTC")
    coverage: float = Field(title="Share of the interval the worker watched")
    config_version: int | None = Field(title="Configuration the interval was counted with")
    counts: list[LineCount] = Field(title="Per line and direction (absent: nothing counted)")


class LiveOut(BaseModel):
    """The last minutes of a camera's counts, for checking a set-up against the road."""

    camera_id: str = Field(title="Camera")
    interval_seconds: int = Field(title="The camera's report interval")
    now: datetime = Field(title="Server time of this answer")
    last_report_at: datetime | None = Field(title="When the API last stored a new report")
    intervals: list[LiveInterval] = Field(
        title="Stored reports, newest first; a missing interval is a gap, not zero traffic"
    )
    totals: list[LineCount] = Field(title="Sums over the intervals above")


class ValidationIn(ApiModel):
    """A validation session to open."""

    minutes: int = Field(default=15, strict=True, ge=1, le=120, title="Length of the window")


class TallyIn(ApiModel):
    """The whole manual tally so far (it replaces the stored one)."""

    manual: dict[TallyKey, TallyCount] = Field(
        max_length=MAX_TALLY_KEYS, title="Vehicles counted by hand per line/direction/class"
    )


class ValidationLine(BaseModel):
    """A line to tally, with its direction labels."""

    line: str = Field(title="Count line")
    directions: list[str] = Field(title="Direction labels")


class ResultRow(BaseModel):
    """Manual against automatic for one line, direction and class."""

    line: str
    direction: str
    vehicle_class: str
    manual: int = Field(title="Counted by hand")
    automatic: int = Field(title="Counted by the camera over the window")


class ValidationResult(BaseModel):
    """The comparison over the window."""

    rows: list[ResultRow] = Field(title="Per line, direction and class")
    manual_total: int
    automatic_total: int = Field(title="Counted by the camera on the session's sheet")
    absolute_error: float | None = Field(
        default=None,
        title="Sum of |automatic - manual| over the sheet's rows / manual total (errors of one "
        "line or class do not cancel another's; null while manual is 0)",
    )
    coverage: float = Field(title="Share of the window the stored reports watched")
    complete: bool = Field(
        title="Every interval of the window has a report that watched all of it: the result is"
        " final"
    )


class ValidationOut(BaseModel):
    """A validation session."""

    id: int
    camera_id: str
    starts_at: datetime = Field(title="Window start (an interval boundary)")
    ends_at: datetime = Field(title="Window end (an interval boundary)")
    status: ValidationStatus
    created_by: str = Field(title="Who opened it")
    created_at: datetime
    finished_at: datetime | None = Field(title="When it was finished or cancelled")
    lines: list[ValidationLine] = Field(title="Lines and directions to tally")
    classes: list[VehicleClass] = Field(title="Classes the camera counts")
    manual: dict[str, int] = Field(title="The stored tally")
    result: ValidationResult | None = Field(title="Once finished: manual against automatic")
    accuracy: float | None = Field(
        title="1 - |automatic - manual| / manual over the totals, at least 0 (null while"
        " manual is 0)"
    )


def result_of(stored: dict[str, Any] | None) -> ValidationResult | None:
    """A stored result back as its model."""
    return ValidationResult.model_validate(stored) if stored is not None else None
