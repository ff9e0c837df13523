"""Management endpoints: editors change sites and cameras, admins also tokens and the audit log.

The same registry and token services as the CLI; every change records its audit event in the
transaction that makes it, and this router commits both.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from api.deps import AdminDep, EditorDep, SessionDep, SettingsDep, client_ip
from api.routers.errors import error_responses
from api.schemas import (
    AdminTokenIn,
    AuditEventOut,
    AuditLog,
    CameraIn,
    RevokedOut,
    SiteIn,
    SiteUpdate,
    TokenList,
    TokenOut,
)
from api.services import audit, camera_config, registry, tokens
from api.services.access import Principal
from api.services.errors import NotFoundError
from api.strict_json import StrictJsonRoute
from contract import Label

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=StrictJsonRoute)
ADMIN_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503)
MAX_TOKEN_DAYS = 3650
MAX_AUDIT_PAGE = 500
MAX_ROW_ID = 2**31 - 1

ExpiresInDays = Annotated[
    int | None,
    Query(ge=1, le=MAX_TOKEN_DAYS, title="Days until the token stops working (absent: never)"),
]


def origin(principal: Principal, request: Request) -> audit.Origin:
    """Who acts and from where, for the audit event of a change."""
    return audit.Origin(principal, client_ip(request))


def lifetime(days: int | None) -> timedelta | None:
    """A token lifetime from the `expires_in_days` query parameter."""
    return timedelta(days=days) if days is not None else None


@router.post(
    "/sites",
    operation_id="admin_create_site",
    summary="Register a site",
    status_code=status.HTTP_201_CREATED,
    response_model=SiteIn,
    responses=ADMIN_ERRORS,
)
def create_site(spec: SiteIn, editor: EditorDep, request: Request, session: SessionDep) -> SiteIn:
    """409 when a site with that id exists; 403 for an editor restricted to other sites."""
    registry.create_site(session, spec, origin(editor, request))
    session.commit()
    return spec


@router.put(
    "/sites/{site_id}",
    operation_id="admin_update_site",
    summary="Change a site's name, road, location, timezone, description or public flag",
    response_model=SiteIn,
    responses=ADMIN_ERRORS,
)
def update_site(
    site_id: Label, spec: SiteUpdate, editor: EditorDep, request: Request, session: SessionDep
) -> SiteIn:
    """Every field is replaced; the audit event lists those that changed."""
    site = registry.update_site(session, site_id, spec, origin(editor, request))
    session.commit()
    return SiteIn.model_validate(site, from_attributes=True)


@router.delete(
    "/sites/{site_id}",
    operation_id="admin_delete_site",
    summary="Delete a site with its cameras and all their data",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ADMIN_ERRORS,
)
def delete_site(
    site_id: Label,
    confirm: Annotated[str, Query(max_length=64, title="The site id again, to confirm")],
    editor: EditorDep,
    request: Request,
    session: SessionDep,
) -> None:
    """Irreversible: reports, rollups, device health and tokens of its cameras go too."""
    if confirm != site_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"to delete site {site_id!r} and all its data, pass confirm={site_id}",
        )
    registry.delete_site(session, site_id, origin(editor, request))
    session.commit()


@router.post(
    "/cameras",
    operation_id="admin_create_camera",
    summary="Register a camera with its lines and zones",
    status_code=status.HTTP_201_CREATED,
    response_model=CameraIn,
    responses=ADMIN_ERRORS,
)
def create_camera(
    spec: CameraIn, editor: EditorDep, request: Request, session: SessionDep
) -> CameraIn:
    """409 when the camera exists (use PUT to replace its lines and zones)."""
    registry.register_camera(session, spec, origin=origin(editor, request))
    session.commit()
    return spec


@router.put(
    "/cameras/{camera_id}",
    operation_id="admin_put_camera",
    summary="Register or replace a camera",
    response_model=CameraIn,
    responses=ADMIN_ERRORS,
)
def put_camera(
    camera_id: Label, spec: CameraIn, editor: EditorDep, request: Request, session: SessionDep
) -> CameraIn:
    """Create the camera, or replace its lines, zones and config version. 409 once the camera
    has configuration versions and the body changes more than its name and site."""
    if spec.id != camera_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body id differs from the path")
    camera_config.refuse_unversioned_change(session, spec)
    registry.register_camera(session, spec, replace=True, origin=origin(editor, request))
    session.commit()
    return spec


@router.get(
    "/tokens",
    operation_id="admin_list_tokens",
    summary="List device and admin tokens with their status and last use",
    response_model=TokenList,
    responses=ADMIN_ERRORS,
)
def list_tokens(
    _admin: AdminDep,
    session: SessionDep,
    camera_id: Annotated[Label | None, Query(title="Only this camera's tokens")] = None,
) -> TokenList:
    """Newest first; never a token's secret (that exists only in the answer that issued it)."""
    return TokenList(tokens=tokens.list_tokens(session, camera_id))


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
    admin: AdminDep,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    expires_in_days: ExpiresInDays = None,
    rotate: bool = False,
) -> TokenOut:
    """The token is in this response only. `rotate=true` revokes the camera's other tokens."""
    issued = tokens.issue_device_token(
        session,
        settings.secret_key,
        camera_id,
        rotate=rotate,
        lifetime=lifetime(expires_in_days),
        origin=origin(admin, request),
    )
    session.commit()
    return TokenOut(
        token_id=issued.token_id,
        token=issued.token,
        camera_id=camera_id,
        expires_at=issued.expires_at,
    )


@router.delete(
    "/cameras/{camera_id}/tokens",
    operation_id="admin_revoke_device_tokens",
    summary="Revoke every device token of a camera",
    response_model=RevokedOut,
    responses=ADMIN_ERRORS,
)
def revoke_device_tokens(
    camera_id: Label, admin: AdminDep, request: Request, session: SessionDep
) -> RevokedOut:
    """The camera's worker is locked out until it gets a new token."""
    revoked = tokens.revoke_camera_tokens(session, camera_id, origin(admin, request))
    session.commit()
    return RevokedOut(revoked=revoked)


@router.delete(
    "/tokens/{token_id}",
    operation_id="admin_revoke_token",
    summary="Revoke one token by its id",
    response_model=RevokedOut,
    responses=ADMIN_ERRORS,
)
def revoke_token(
    token_id: Annotated[str, Path(max_length=64, title="Public id of the token")],
    admin: AdminDep,
    request: Request,
    session: SessionDep,
) -> RevokedOut:
    """404 when no live token has that id."""
    if not tokens.revoke_token(session, token_id, origin(admin, request)):
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
    spec: AdminTokenIn,
    admin: AdminDep,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    expires_in_days: ExpiresInDays = None,
) -> TokenOut:
    """The token is in this response only; it acts as an unrestricted admin."""
    issued = tokens.create_admin_token(
        session,
        settings.secret_key,
        spec.name,
        lifetime=lifetime(expires_in_days),
        origin=origin(admin, request),
    )
    session.commit()
    return TokenOut(
        token_id=issued.token_id, token=issued.token, camera_id=None, expires_at=issued.expires_at
    )


@router.get(
    "/audit",
    operation_id="admin_audit_log",
    summary="Read the audit log, newest first",
    response_model=AuditLog,
    responses=ADMIN_ERRORS,
)
def audit_log(
    _admin: AdminDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE, title="Events per page")] = 100,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, title="Only events older than this id")
    ] = None,
) -> AuditLog:
    """Page on with `before_id` set to the last id of the previous page."""
    events = audit.recent_events(session, limit, before_id)
    return AuditLog(events=[AuditEventOut.model_validate(e, from_attributes=True) for e in events])
