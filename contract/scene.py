"""The scene map: where vehicles drive in a camera's view, learnt without keeping an image.

A coarse grid over the frame; per cell only aggregates over a learning window: how many
distinct vehicles passed, their mean motion and stopped share (each vehicle weighing the same,
however long it stayed) and the class mix. Cells seen by fewer than ``k`` vehicles are
withheld, and so is any class count below ``k`` (it reads as 0), so a lone vehicle cannot be
read from it. No pixel value, no id, no position of any one vehicle, no path can be expressed here.
The message also carries the worker's proposed lines and zones (configured geometry only).

Size: at most ``MAX_SCENE_CELLS`` cells of at most about 90 bytes each in compact JSON,
plus bounded proposals, keeps every valid message well under 64 KiB.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from contract.report import (
    EPOCH,
    LATEST_SENT_AT,
    MAX_CONFIG_VERSION,
    MAX_FRAME_SIDE,
    SCHEMA_VERSION,
    VEHICLE_CLASSES,
    ContractModel,
    GeometricDirection,
    Label,
    SchemaVersion,
)

SCENE_GRID_DEFAULT = 64
"""Cells along the frame's long side."""
SCENE_GRID_MAX = 96
SCENE_K_DEFAULT = 3
"""Distinct vehicles a cell needs before it is shown."""
SCENE_LEARNING_S_DEFAULT = 300
MAX_SCENE_CELLS = 640
"""More qualifying cells than this and the worker halves the grid until they fit."""
MAX_SCENE_COUNT = 99_999
MAX_PROPOSALS = 16
MAX_SPEED_PX_S = 5_000

Explanation = Annotated[str, StringConstraints(pattern=r"^[ -~]{1,200}$")]
PixelCoordinate = Annotated[float, Field(ge=0, le=MAX_FRAME_SIDE)]
PixelPoint = Annotated[list[PixelCoordinate], Field(min_length=2, max_length=2)]
"""[x, y] in native-resolution pixels (a list: JSON has no tuples and the contract is strict)."""
Confidence = Annotated[float, Field(ge=0, le=1)]


class SceneCell(ContractModel):
    """One grid cell that at least ``k`` distinct vehicles passed through.

    Short keys keep the message small; the titles say what each holds.
    """

    c: int = Field(ge=0, lt=SCENE_GRID_MAX, title="Column (0 = left)")
    r: int = Field(ge=0, lt=SCENE_GRID_MAX, title="Row (0 = top)")
    n: int = Field(ge=1, le=MAX_SCENE_COUNT, title="Distinct vehicles seen in the cell")
    vx: int = Field(ge=-MAX_SPEED_PX_S, le=MAX_SPEED_PX_S, title="Mean motion, x, pixels/s")
    vy: int = Field(ge=-MAX_SPEED_PX_S, le=MAX_SPEED_PX_S, title="Mean motion, y, pixels/s")
    s: float = Field(
        ge=0, le=1, title="Mean over the cell's vehicles of the share of their time there stopped"
    )
    k: list[Annotated[int, Field(ge=0, le=MAX_SCENE_COUNT)]] = Field(
        min_length=len(VEHICLE_CLASSES),
        max_length=len(VEHICLE_CLASSES),
        title="Distinct vehicles per class, in the order of VEHICLE_CLASSES (0: fewer than k)",
    )


class ProposedLine(ContractModel):
    """A count line the worker proposes across one flow corridor."""

    name: Label = Field(title="Line name")
    points: list[PixelPoint] = Field(
        min_length=2, max_length=2, title="End points, native-resolution pixels"
    )
    direction_names: dict[GeometricDirection, Label] = Field(title="Names from the flow")
    confidence: Confidence = Field(title="How well the corridor was observed (0-1)")
    reason: Explanation = Field(title="Why here")


class ProposedZone(ContractModel):
    """A congestion zone the worker proposes on one approach."""

    name: Label = Field(title="Zone name")
    polygon: list[PixelPoint] = Field(min_length=3, max_length=32, title="Vertices, pixels")
    lanes: int = Field(ge=1, le=12, title="Lanes estimated from the corridor width")
    confidence: Confidence = Field(title="How well the approach was observed (0-1)")
    reason: Explanation = Field(title="Why here")


class Proposals(ContractModel):
    """Lines and zones proposed from the scene map, for an installer to accept or edit."""

    lines: list[ProposedLine] = Field(max_length=MAX_PROPOSALS, title="Proposed count lines")
    zones: list[ProposedZone] = Field(max_length=MAX_PROPOSALS, title="Proposed zones")


class SceneMap(ContractModel):
    """One camera's scene map over one learning window."""

    schema_version: SchemaVersion = Field(default=SCHEMA_VERSION, title="Wire contract version")
    camera_id: Label = Field(title="Camera id")
    config_version: int | None = Field(
        default=None, ge=0, le=MAX_CONFIG_VERSION, title="Configuration version while learning"
    )
    window_start: datetime = Field(strict=False, title="Learning window start, UTC")
    window_end: datetime = Field(strict=False, title="Learning window end, UTC")
    analysed_s: float = Field(ge=0, le=86_400, title="Seconds of stream analysed in the window")
    frame_width: int = Field(ge=1, le=MAX_FRAME_SIDE, title="Native frame width, pixels")
    frame_height: int = Field(ge=1, le=MAX_FRAME_SIDE, title="Native frame height, pixels")
    cols: int = Field(ge=1, le=SCENE_GRID_MAX, title="Grid columns")
    rows: int = Field(ge=1, le=SCENE_GRID_MAX, title="Grid rows")
    k: int = Field(ge=2, le=1000, title="Distinct vehicles a cell needs to be shown")
    vehicles: int = Field(ge=0, le=10_000_000, title="Distinct vehicles seen in the window")
    withheld_cells: int = Field(
        ge=0, le=SCENE_GRID_MAX**2, title="Cells seen by fewer than k vehicles (not shown)"
    )
    cells: list[SceneCell] = Field(max_length=MAX_SCENE_CELLS, title="Cells seen by k or more")
    proposals: Proposals = Field(title="Lines and zones proposed from this map")

    @model_validator(mode="after")
    def map_is_consistent(self) -> Self:
        """Times in order and in range; cells inside the grid, each once; k-anonymity held."""
        for moment in (self.window_start, self.window_end):
            if moment.tzinfo is None or not EPOCH <= moment < LATEST_SENT_AT:
                raise ValueError("window times must be UTC between 1970 and 2100")
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        places = [(cell.c, cell.r) for cell in self.cells]
        if len(places) != len(set(places)):
            raise ValueError("a grid cell appears more than once")
        if any(cell.c >= self.cols or cell.r >= self.rows for cell in self.cells):
            raise ValueError("a cell lies outside the grid")
        if any(cell.n < self.k for cell in self.cells):
            raise ValueError("a cell seen by fewer than k vehicles must be withheld")
        if any(0 < n < self.k for cell in self.cells for n in cell.k):
            raise ValueError("a class count below k must be withheld (sent as 0)")
        return self

    def cell_size(self) -> tuple[float, float]:
        """Width and height of one cell in native pixels."""
        return self.frame_width / self.cols, self.frame_height / self.rows
