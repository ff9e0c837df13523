"""Admin endpoints (admin token): the same registry operations as the CLI."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from api.deps import AdminDep, SessionDep, SettingsDep
from api.routers.errors import error_responses
from api.schemas import AdminTokenIn, CameraIn, RevokedOut, SiteIn, TokenOut
from api.services import registry, tokens
from api.services.errors import NotFoundError
from api.strict_json import StrictJsonRoute
from contract import Label

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=StrictJsonRoute)
ADMIN_ERRORS = error_responses(400, 401, 404, 409, 413, 422, 429, 503)


@router.post(
    "/sites",
    operation_id="admin_create_site",
    summary="Register a site",
    status_code=status.HTTP_201_CREATED,
    response_model=SiteIn,
    responses=ADMIN_ERRORS,
)
def create_site(spec: SiteIn, _admin: AdminDep, session: SessionDep) -> SiteIn:
    """409 when a site with that id exists."""
    registry.create_site(session, spec)
    session.commit()
    return spec


@router.post(
    "/cameras",
    operation_id="admin_create_camera",
    summary="Register a camera with its lines and zones",
    status_code=status.HTTP_201_CREATED,
    response_model=CameraIn,
    responses=ADMIN_ERRORS,
)
def create_camera(spec: CameraIn, _admin: AdminDep, session: SessionDep) -> CameraIn:
    """409 when the camera exists (use PUT to replace its lines and zones)."""
    registry.register_camera(session, spec)
    session.commit()
    return spec


@router.put(
    "/cameras/{camera_id}",
    operation_id="admin_put_camera",
    summary="Register or replace a camera",
    response_model=CameraIn,
    responses=ADMIN_ERRORS,
)
def put_camera(camera_id: Label, spec: CameraIn, _admin: AdminDep, session: SessionDep) -> CameraIn:
    """Create the camera, or replace its lines, zones and config version."""
    if spec.id != camera_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body id differs from the path")
    registry.register_camera(session, spec, replace=True)
    session.commit()
    return spec


@router.post(
    "/cameras/{camera_id}/tokens",
    operation_id="admin_issue_device_token",
    summary="Issue (or rotate) a device token",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenOut,
    responses=ADMIN_ERRORS,
)
def issue_device_token(
    camera_id: Label,
    _admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    rotate: bool = False,
) -> TokenOut:
    """The token is in this response only. `rotate=true` revokes the camera's other tokens."""
    issued = tokens.issue_device_token(session, settings.secret_key, camera_id, rotate=rotate)
    session.commit()
    return TokenOut(token_id=issued.token_id, token=issued.token, camera_id=camera_id)


@router.delete(
    "/cameras/{camera_id}/tokens",
    operation_id="admin_revoke_device_tokens",
    summary="Revoke every device token of a camera",
    response_model=RevokedOut,
    responses=ADMIN_ERRORS,
)
def revoke_device_tokens(camera_id: Label, _admin: AdminDep, session: SessionDep) -> RevokedOut:
    """The camera's worker is locked out until it gets a new token."""
    registry.require_camera(session, camera_id)
    revoked = tokens.revoke_camera_tokens(session, camera_id)
    session.commit()
    return RevokedOut(revoked=revoked)


@router.delete(
    "/tokens/{token_id}",
    operation_id="admin_revoke_token",
    summary="Revoke one token by its id",
    response_model=RevokedOut,
    responses=ADMIN_ERRORS,
)
def revoke_token(token_id: str, _admin: AdminDep, session: SessionDep) -> RevokedOut:
    """404 when no live token has that id."""
    if not tokens.revoke_token(session, token_id):
        raise NotFoundError(f"no live token {token_id!r}")
    session.commit()
    return RevokedOut(revoked=1)


@router.post(
    "/admin-tokens",
    operation_id="admin_create_admin_token",
    summary="Create an admin token",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenOut,
    responses=ADMIN_ERRORS,
)
def create_admin_token(
    spec: AdminTokenIn, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> TokenOut:
    """The token is in this response only."""
    issued = tokens.issue_token(session, settings.secret_key, "admin", None, spec.name)
    session.commit()
    return TokenOut(token_id=issued.token_id, token=issued.token, camera_id=None)
