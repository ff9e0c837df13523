"""Device endpoints: interval-report batches and heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, status
from fastapi.responses import JSONResponse

from api.deps import DeviceDep, SessionDep
from api.routers.errors import error_responses
from api.schemas import HeartbeatResult, IngestResult
from api.services.ingest import ingest_batch, record_heartbeat
from api.strict_json import StrictJsonRoute
from contract import CountRow, Heartbeat, ReportBatch
from contract.examples import full_interval_report

router = APIRouter(prefix="/api/v1", tags=["ingest"], route_class=StrictJsonRoute)

EXAMPLE_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def example_report(start: datetime) -> dict[str, Any]:
    """A valid report for the docs, built with the contract so it can never drift from it."""
    row = CountRow(line="main", direction="northbound", vehicle_class="car", count=12)
    return full_interval_report("cam-1", start, [row]).model_dump(mode="json")


BATCH_EXAMPLE = {
    "reports": [example_report(EXAMPLE_START + timedelta(minutes=n)) for n in range(2)]
}


@router.post(
    "/reports",
    operation_id="post_reports",
    summary="Post a batch of interval reports",
    response_model=IngestResult,
    responses={
        409: {"model": IngestResult, "description": "Some reports differ from the stored ones"},
        **error_responses(400, 401, 403, 413, 422, 429, 503),
    },
)
def post_reports(
    batch: Annotated[ReportBatch, Body(examples=[BATCH_EXAMPLE])],
    camera: DeviceDep,
    session: SessionDep,
) -> IngestResult | JSONResponse:
    """Store reports idempotently: resending is always safe.

    200 when every report is new or an identical resend; 409 (same body) when some report
    differs from the stored one, which is kept. New reports in the batch are stored either way.
    """
    result = ingest_batch(session, camera, list(batch.reports))
    if result.conflicts:
        return JSONResponse(result.model_dump(mode="json"), status_code=status.HTTP_409_CONFLICT)
    return result


@router.post(
    "/heartbeat",
    operation_id="post_heartbeat",
    summary="Report worker liveness",
    response_model=HeartbeatResult,
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
def post_heartbeat(heartbeat: Heartbeat, camera: DeviceDep, session: SessionDep) -> HeartbeatResult:
    """Update the camera's device health (last seen, backlog, stream states)."""
    health = record_heartbeat(session, camera, heartbeat)
    return HeartbeatResult(
        camera_id=camera.id, received_at=health.received_at, config_version=camera.config_version
    )
