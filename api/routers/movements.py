"""Planner queries on turning movements: TMC table, peak hour and PHF, CSV and UTDF exports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from api.deps import AudienceDep, SessionDep
from api.movement_responses import Bin, MovementPeakOut, TmcOut
from api.params import ClassQ, TimeRange, TimeRangeDep, TzQ
from api.read_limits import ReadSlotDep
from api.routers.errors import error_responses
from api.services import movements
from api.services.scope import Audience
from contract import Label, VehicleClass

router = APIRouter(prefix="/api/v1/movements", tags=["planner"])
QUERY_ERRORS = error_responses(401, 404, 422, 503)
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}
CameraParam = Annotated[Label, Query(description="Camera id (one intersection)")]
BinQ = Annotated[Bin, Query(description="Bin size")]


@dataclass(frozen=True, slots=True)
class MovementQuery:
    """The query parameters every movement endpoint takes."""

    camera: str
    span: TimeRange
    vehicle_class: VehicleClass | None
    tz: str | None

    def table(self, session: Session, audience: Audience, bin: Bin) -> movements.MovementTable:
        """The movement table asked for (404: camera not visible to the caller)."""
        return movements.movement_table(
            session, audience, self.camera, bin, self.span, self.tz, self.vehicle_class
        )


def movement_query(
    span: TimeRangeDep, camera: CameraParam, vehicle_class: ClassQ = None, tz: TzQ = None
) -> MovementQuery:
    return MovementQuery(camera, span, vehicle_class, tz)


MovementQueryDep = Annotated[MovementQuery, Depends(movement_query)]


def table_of(
    session: SessionDep,
    audience: AudienceDep,
    _slot: ReadSlotDep,
    query: MovementQueryDep,
    bin: BinQ = "15min",
) -> movements.MovementTable:
    return query.table(session, audience, bin)


TableDep = Annotated[movements.MovementTable, Depends(table_of)]


@router.get(
    "/tmc",
    operation_id="get_movement_tmc",
    summary="Turning-movement count table with coverage per bin",
    response_model=TmcOut,
    response_model_by_alias=True,
    responses=QUERY_ERRORS,
)
def get_tmc(table: TableDep) -> TmcOut:
    """Per approach and movement, per 15 minutes or hour; null counts are gaps, not zeros.
    At most 93 days; default the last day."""
    return movements.tmc(table)


@router.get(
    "/tmc.csv",
    operation_id="get_movement_tmc_csv",
    summary="Turning-movement count table (CSV)",
    responses={**CSV, **QUERY_ERRORS},
)
def get_tmc_csv(table: TableDep) -> Response:
    """One row per bin and movement; an empty count is a gap."""
    return csv_download(movements.tmc_csv(table), f"tmc-{table.view.camera}.csv")


@router.get(
    "/peak-hour",
    operation_id="get_movement_peak_hour",
    summary="Peak hour of an intersection and PHF per movement and approach",
    response_model=MovementPeakOut,
    response_model_by_alias=True,
    responses=QUERY_ERRORS,
)
def get_peak_hour(
    session: SessionDep, audience: AudienceDep, _slot: ReadSlotDep, query: MovementQueryDep
) -> MovementPeakOut:
    """Busiest four consecutive covered 15-minute bins; PHF = V_hour / (4 x V15_max)."""
    return movements.peak(query.table(session, audience, "15min"))


@router.get(
    "/utdf-volume.csv",
    operation_id="get_movement_utdf_volume",
    summary="Synchro UTDF Volume.csv (15- or 60-minute counts)",
    responses={**CSV, **QUERY_ERRORS},
)
def get_utdf_volume(
    table: TableDep,
    intid: Annotated[int, Query(ge=1, le=999_999, description="Synchro intersection id")] = 1,
) -> Response:
    """Needs an intersection layout with at most one leg per compass point (else 422)."""
    body = movements.utdf_volume(table, intid)
    return csv_download(body, "Volume.csv")


def csv_download(body: str, filename: str) -> Response:
    return Response(
        body,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
