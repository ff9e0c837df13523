"""Device endpoints: interval-report batches, heartbeats and the camera's configuration.

The device token is checked from the headers before the body is read, so an anonymous
8 MiB body costs a header check, not half a second of parsing on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Request, Response, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.datastructures import State

from api.coalesce import Coalescer
from api.deps import (
    BearerCall,
    CredentialsDep,
    DeviceDep,
    SessionDep,
    authorize_devices,
    client_ip,
    refuse_unknown_device,
)
from api.models import Camera
from api.routers.errors import error_responses
from api.schemas import DeviceConfig, HeartbeatResult, IngestResult
from api.services import camera_config
from api.services.ingest import AcceptWindow, Submission, ingest_group, record_heartbeat
from api.settings import Settings
from api.strict_json import StrictJsonRoute
from contract import CountRow, Heartbeat, IntervalReport, ReportBatch
from contract.examples import full_interval_report

T = TypeVar("T")
GROUP_REQUESTS = 64
GROUP_REPORTS = 2000
"""A group's bounds: a reconnect storm's batches of 100 go twenty to a transaction."""


class DeviceRoute(StrictJsonRoute):
    """Device endpoints: a caller without a live device token is refused before the body."""

    async def before_body(self, request: Request) -> None:
        await refuse_unknown_device(request)


router = APIRouter(prefix="/api/v1", tags=["ingest"], route_class=DeviceRoute)


async def received_bytes(request: Request) -> int:
    """Size of the request body as it arrived (FastAPI has read it already; this is its
    cached copy): the bytes the public register counts, measured here, never claimed."""
    return len(await request.body())


BodyBytes = Annotated[int, Depends(received_bytes)]


def commit_retrying_once(session: Session, work: Callable[[], T]) -> T:
    """Run `work` and commit. A unique violation means a concurrent resend of the same report
    committed first: roll back and run it once more, so it is classified against what that
    resend stored (a duplicate, not an error)."""
    try:
        result = work()
        session.commit()
    except IntegrityError:
        session.rollback()
        result = work()
        session.commit()
    return result


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
async def post_reports(
    batch: Annotated[ReportBatch, Body(examples=[BATCH_EXAMPLE])],
    request: Request,
    credentials: CredentialsDep,
    body_bytes: BodyBytes,
) -> Response:
    """Store reports idempotently: resending is always safe.

    200 when every report is new or an identical resend; 409 (same body) when some report
    differs from the stored one, which is kept. New reports in the batch are stored either way.
    422, storing nothing, when any report breaks a rule: a line, direction, zone or gate the
    camera lacks, another length than the camera's interval, an interval overlapping one of
    another length (stored or in the batch), or an interval outside the window around server
    time. A report whose `config_version` the API stores is checked against that version's
    set-up instead of the camera's current one, so reports counted before a configuration
    switch are still accepted after it.
    """
    queue: Coalescer[DeviceBatch, IngestResult] = request.app.state.ingest_queue
    call = BearerCall(credentials, client_ip(request))
    result = await queue.submit(DeviceBatch(call, list(batch.reports), body_bytes))
    code = status.HTTP_409_CONFLICT if result.conflicts else status.HTTP_200_OK
    return Response(result.model_dump_json(), code, media_type="application/json")


@dataclass(frozen=True, slots=True)
class DeviceBatch:
    """A request's batch as it waits for its group: its token, reports and body size."""

    call: BearerCall
    reports: list[IntervalReport]
    body_bytes: int


def ingest_queue(state: State) -> Coalescer[DeviceBatch, IngestResult]:
    """The app's queue of batches: those that arrive while a group is stored go together
    into the next one (group commit, `api.coalesce`)."""
    return Coalescer(
        partial(store_batches, state),
        max_items=GROUP_REQUESTS,
        max_weight=GROUP_REPORTS,
        weight=lambda batch: len(batch.reports),
    )


def store_batches(state: State, batches: Sequence[DeviceBatch]) -> list[IngestResult | Exception]:
    """A group's database work in one thread and one transaction: the device checks, the
    batches and the commit. Each request gets its own outcome: its result, or the error
    (401, 403, 422, 429) that refuses it alone."""
    settings: Settings = state.settings
    with state.session_factory() as session:
        cameras = authorize_devices(state, session, settings, [b.call for b in batches])
        window = AcceptWindow.from_settings(settings, datetime.now(UTC))
        authorized = [
            (i, Submission(camera, batch.reports, batch.body_bytes))
            for i, (batch, camera) in enumerate(zip(batches, cameras, strict=True))
            if isinstance(camera, Camera)
        ]
        stored = commit_retrying_once(
            session, lambda: ingest_group(session, [s for _, s in authorized], window)
        )
    results = dict(zip((i for i, _ in authorized), stored, strict=True))
    return [results[i] if isinstance(c, Camera) else c for i, c in enumerate(cameras)]


@router.post(
    "/heartbeat",
    operation_id="post_heartbeat",
    summary="Report worker liveness",
    response_model=HeartbeatResult,
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
def post_heartbeat(
    heartbeat: Heartbeat, camera: DeviceDep, session: SessionDep, body_bytes: BodyBytes
) -> HeartbeatResult:
    """Update the camera's device health (last seen, backlog, dead letters, stream states,
    software, last configuration pull). The reply names the newest configuration version (a
    newer one than the worker's: pull it) and whether an editor wants a fresh scene map."""
    health = record_heartbeat(session, camera, heartbeat, body_bytes)
    version = camera_config.current_version(session, camera)
    wanted = camera.scene_map_requested_at is not None
    session.commit()
    return HeartbeatResult(
        camera_id=camera.id,
        received_at=health.received_at,
        config_version=version,
        scene_map_wanted=wanted,
    )


@router.get(
    "/device/config",
    operation_id="get_device_config",
    summary="The camera's newest configuration",
    response_model=DeviceConfig,
    responses=error_responses(401, 404, 429, 503),
)
def get_device_config(camera: DeviceDep, session: SessionDep) -> DeviceConfig:
    """Lines, zones, calibration, interval and classes the worker should count with. 404 when
    the API stores no configuration for the camera (the worker keeps its site file's)."""
    record = camera_config.require_config(session, camera.id)
    return DeviceConfig(
        camera_id=camera.id, version=record.version, setup=camera_config.setup_of(record)
    )
