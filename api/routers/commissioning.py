"""Commissioning without imagery: scene maps, the live check and manual validation tallies."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response, status

from api.commissioning_schemas import (
    LiveOut,
    SceneMapOut,
    SceneMapReceipt,
    SceneMapRequested,
    TallyIn,
    ValidationIn,
    ValidationOut,
)
from api.deps import AudienceDep, DeviceDep, EditorDep, SessionDep
from api.middleware import bounded_receive
from api.routers.admin import origin
from api.routers.errors import error_responses
from api.routers.ingest import DeviceRoute
from api.services import live, registry, scene_maps, validation
from api.strict_json import StrictJsonRoute
from contract import Label
from contract.scene import SceneMap

SCENE_MAP_MAX_BYTES = 64 * 1024
"""Every valid scene map fits well inside (see contract.scene)."""
MAX_SESSION_ID = 2**31 - 1
READ_ERRORS = error_responses(401, 404, 422, 503)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 503)

SessionId = Annotated[int, Path(ge=1, le=MAX_SESSION_ID, title="Validation session id")]


def scene_map_too_large() -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"a scene map body may be at most {SCENE_MAP_MAX_BYTES} bytes",
    )


class SceneMapRoute(DeviceRoute):
    """A device route with the scene map's own body limit, far below the app's: a larger body
    is a 413 before it is parsed, whether its length is declared or it is streamed."""

    async def before_body(self, request: Request) -> None:
        await super().before_body(request)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > SCENE_MAP_MAX_BYTES:
            raise scene_map_too_large()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            receive = bounded_receive(request.receive, SCENE_MAP_MAX_BYTES, scene_map_too_large())
            return await handler(Request(request.scope, receive))

        return limited


router = APIRouter(prefix="/api/v1", tags=["commissioning"], route_class=StrictJsonRoute)
device = APIRouter(route_class=SceneMapRoute)


@device.post(
    "/device/scene-map",
    operation_id="post_scene_map",
    summary="Post a scene map the worker learnt",
    response_model=SceneMapReceipt,
    responses=error_responses(400, 401, 413, 422, 429, 503),
)
def post_scene_map(scene_map: SceneMap, camera: DeviceDep, session: SessionDep) -> SceneMapReceipt:
    """Stored with the camera's last 20 maps; it settles a pending request when learnt up to or
    after it. 422, storing nothing, for a map of another camera than the token's."""
    record = scene_maps.store_scene_map(session, camera, scene_map, datetime.now(UTC))
    session.commit()
    return SceneMapReceipt(
        camera_id=camera.id, received_at=record.received_at, cells=len(scene_map.cells)
    )


@router.post(
    "/cameras/{camera_id}/scene-map/request",
    operation_id="request_scene_map",
    summary="Ask the camera's worker for a fresh scene map",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SceneMapRequested,
    responses=WRITE_ERRORS,
)
def request_scene_map(
    camera_id: Label, editor: EditorDep, request: Request, session: SessionDep
) -> SceneMapRequested:
    """The worker learns one at its next heartbeat; a request already pending is kept."""
    asked_by = origin(editor, request)
    camera = registry.require_manageable_camera(session, asked_by, camera_id)
    requested = scene_maps.request_scene_map(session, camera, asked_by, datetime.now(UTC))
    session.commit()
    return SceneMapRequested(requested_at=requested)


@router.get(
    "/cameras/{camera_id}/scene-map",
    operation_id="get_scene_map",
    summary="The camera's newest scene map",
    response_model=SceneMapOut,
    responses=error_responses(401, 403, 404, 422, 503),
)
def get_scene_map(camera_id: Label, editor: EditorDep, session: SessionDep) -> SceneMapOut:
    """404 until one arrives; its detail says whether one has been requested."""
    camera = registry.require_visible_camera(session, editor.audience, camera_id)
    return scene_maps.latest_scene_map(session, camera)


@router.get(
    "/cameras/{camera_id}/live",
    operation_id="get_live_counts",
    summary="The last minutes of counts, per interval, for the live check",
    response_model=LiveOut,
    responses=READ_ERRORS,
)
def get_live(
    camera_id: Label,
    audience: AudienceDep,
    session: SessionDep,
    minutes: Annotated[int, Query(ge=1, le=60, description="How far back")] = 5,
) -> LiveOut:
    """Every class summed per line and direction; an interval without a report is absent."""
    camera = registry.require_visible_camera(session, audience, camera_id)
    return live.live_counts(session, camera, minutes, datetime.now(UTC))


@router.post(
    "/cameras/{camera_id}/validations",
    operation_id="create_validation",
    summary="Open a validation session (a manual tally to compare with the camera)",
    status_code=status.HTTP_201_CREATED,
    response_model=ValidationOut,
    responses=WRITE_ERRORS,
)
def create_validation(
    camera_id: Label,
    editor: EditorDep,
    request: Request,
    session: SessionDep,
    spec: Annotated[ValidationIn | None, Body()] = None,
) -> ValidationOut:
    """The window starts at the camera's next interval boundary and covers whole intervals."""
    opened_by = origin(editor, request)
    camera = registry.require_manageable_camera(session, opened_by, camera_id)
    minutes = (spec or ValidationIn()).minutes
    record = validation.open_session(session, camera, minutes, opened_by, datetime.now(UTC))
    out = validation.session_out(
        session, record, validation.TallySheet.of_session(session, record, camera)
    )
    session.commit()
    return out


@router.put(
    "/validations/{session_id}/tally",
    operation_id="put_validation_tally",
    summary="Replace the session's manual tally",
    response_model=ValidationOut,
    responses=WRITE_ERRORS,
)
def put_tally(
    session_id: SessionId, spec: TallyIn, editor: EditorDep, request: Request, session: SessionDep
) -> ValidationOut:
    """The whole tally, so a resend is harmless; 409 once the session is finished or
    cancelled, 422 for a key that is not one of the session's lines, directions and classes."""
    record, camera = validation.require_session(session, editor.audience, session_id)
    sheet = validation.TallySheet.of_session(session, record, camera)
    validation.save_tally(session, record, sheet, spec.manual, origin(editor, request))
    session.commit()
    return validation.session_out(session, record, sheet)


@router.post(
    "/validations/{session_id}/finish",
    operation_id="finish_validation",
    summary="Finish the tally and compare it with the camera",
    response_model=ValidationOut,
    responses=WRITE_ERRORS,
)
def finish_validation(
    session_id: SessionId, editor: EditorDep, request: Request, session: SessionDep
) -> ValidationOut:
    """409 before the window has ended (the tally must cover it) and once closed."""
    record, camera = validation.require_session(session, editor.audience, session_id)
    sheet = validation.TallySheet.of_session(session, record, camera)
    validation.finish_session(session, record, sheet, origin(editor, request), datetime.now(UTC))
    out = validation.session_out(session, record, sheet)
    session.commit()
    return out


@router.post(
    "/validations/{session_id}/cancel",
    operation_id="cancel_validation",
    summary="Cancel the session: nothing is compared",
    response_model=ValidationOut,
    responses=WRITE_ERRORS,
)
def cancel_validation(
    session_id: SessionId, editor: EditorDep, request: Request, session: SessionDep
) -> ValidationOut:
    """409 once finished or cancelled."""
    record, camera = validation.require_session(session, editor.audience, session_id)
    validation.cancel_session(session, record, origin(editor, request), datetime.now(UTC))
    out = validation.session_out(
        session, record, validation.TallySheet.of_session(session, record, camera)
    )
    session.commit()
    return out


@router.get(
    "/validations/{session_id}",
    operation_id="get_validation",
    summary="A validation session with its result",
    response_model=ValidationOut,
    responses=READ_ERRORS,
)
def get_validation(
    session_id: SessionId, audience: AudienceDep, session: SessionDep
) -> ValidationOut:
    """A finished session's result is final once every interval of its window has a report;
    until then it is recomputed from the reports stored so far (coverage says how many)."""
    record, camera = validation.require_session(session, audience, session_id)
    out = validation.session_out(
        session, record, validation.TallySheet.of_session(session, record, camera)
    )
    session.commit()
    return out


@router.get(
    "/cameras/{camera_id}/validations",
    operation_id="list_validations",
    summary="The camera's validation sessions, newest first",
    response_model=list[ValidationOut],
    responses=READ_ERRORS,
)
def list_validations(
    camera_id: Label,
    audience: AudienceDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100, description="At most this many")] = 50,
) -> list[ValidationOut]:
    """For the latest result and its trend."""
    camera = registry.require_visible_camera(session, audience, camera_id)
    out = validation.camera_sessions(session, camera, limit)
    session.commit()
    return out


router.include_router(device)
