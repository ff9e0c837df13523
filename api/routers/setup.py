"""Camera set-up: versioned remote configuration and calibration fitting (editors).

Reads need a signed-in viewer of the camera's site; saving and fitting need an editor who may
manage it. Every save records its audit event in the transaction that stores the version, and
this router commits both.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from api.deps import AudienceDep, EditorDep, SessionDep
from api.responses import CalibrationFit, CameraConfigOut, ConfigVersionOut
from api.routers.admin import origin
from api.routers.errors import error_responses
from api.schemas import CalibrationFitIn, ConfigIn
from api.services import camera_config
from api.strict_json import StrictJsonRoute
from contract import Label
from contract.report import MAX_CONFIG_VERSION

router = APIRouter(prefix="/api/v1", tags=["setup"], route_class=StrictJsonRoute)
READ_ERRORS = error_responses(401, 404, 422, 503)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503)
Version = Annotated[int, Path(ge=0, le=MAX_CONFIG_VERSION, title="Configuration version")]


@router.get(
    "/cameras/{camera_id}/config",
    operation_id="get_camera_config",
    summary="A camera's newest configuration and what its worker did with it",
    response_model=CameraConfigOut,
    responses=READ_ERRORS,
)
def get_config(camera_id: Label, audience: AudienceDep, session: SessionDep) -> CameraConfigOut:
    """The newest stored set-up, who saved it and when, the version the worker last reported
    and its last pull (applied, or refused and why). 404 when none is stored."""
    return camera_config.config_view(session, audience, camera_id)


@router.get(
    "/cameras/{camera_id}/config/versions",
    operation_id="list_camera_config_versions",
    summary="Every stored version of a camera's configuration",
    response_model=list[ConfigVersionOut],
    responses=READ_ERRORS,
)
def list_versions(
    camera_id: Label, audience: AudienceDep, session: SessionDep
) -> list[ConfigVersionOut]:
    """Newest first: version, when, who and why (the set-ups: GET .../versions/{version})."""
    return camera_config.version_history(session, audience, camera_id)


@router.get(
    "/cameras/{camera_id}/config/versions/{version}",
    operation_id="get_camera_config_version",
    summary="One stored version of a camera's configuration",
    response_model=CameraConfigOut,
    responses=READ_ERRORS,
)
def get_version(
    camera_id: Label, version: Version, audience: AudienceDep, session: SessionDep
) -> CameraConfigOut:
    """As GET .../config, for an older version."""
    return camera_config.config_view(session, audience, camera_id, version)


@router.put(
    "/cameras/{camera_id}/config",
    operation_id="put_camera_config",
    summary="Save a camera's set-up as its next configuration version",
    status_code=status.HTTP_201_CREATED,
    response_model=CameraConfigOut,
    responses=WRITE_ERRORS,
)
def put_config(
    camera_id: Label, spec: ConfigIn, editor: EditorDep, request: Request, session: SessionDep
) -> CameraConfigOut:
    """The worker pulls it at its next heartbeat and counts with it from the next interval
    boundary. 409 when `base_version` is no longer the newest (someone else saved); 422, with
    every problem located, for a set-up that breaks a rule."""
    camera_config.save_config(
        session,
        camera_id,
        spec.setup,
        note=spec.note,
        base_version=spec.base_version,
        origin=origin(editor, request),
    )
    session.commit()
    return camera_config.config_view(session, editor.audience, camera_id)


@router.post(
    "/cameras/{camera_id}/calibration/fit",
    operation_id="fit_camera_calibration",
    summary="Fit a ground calibration to image points and their positions",
    response_model=CalibrationFit,
    responses=WRITE_ERRORS,
)
def fit_calibration(
    camera_id: Label,
    spec: CalibrationFitIn,
    editor: EditorDep,
    request: Request,
    session: SessionDep,
) -> CalibrationFit:
    """Ground points in metres, or latitude and longitude (turned into metres on the local
    plane). Returns the calibration to save with the set-up and its re-projection error;
    stores nothing. 422 with the reason when the points cannot fix a homography."""
    return camera_config.fit_calibration(session, origin(editor, request), camera_id, spec)
