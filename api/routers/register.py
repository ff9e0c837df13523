"""The public camera register: no login, listed sites only, cacheable like the open data."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Request, Response

from api.deps import SessionDep, SettingsDep
from api.read_limits import ReadSlotDep
from api.responses import CameraPage, RegisterList
from api.routers.errors import error_responses
from api.routers.open_data import as_json, latest
from api.routers.open_data import cached as open_cached
from api.services import register
from api.settings import Settings
from contract import Label
from contract.schema import REPORT_BATCH

router = APIRouter(prefix="/api/v1/open", tags=["public register"])
REGISTER_ERRORS = error_responses(404, 422, 503)
SVG = "image/svg+xml"


def cached(
    request: Request, settings: Settings, body: str, media_type: str, stamp: datetime | None
) -> Response:
    """Open-data caching; without a configured public URL the links follow the request's
    Host, so a shared cache must keep one copy per host (no poisoning with a forged Host)."""
    response = open_cached(request, settings, body, media_type, stamp)
    if not settings.register_public_url:
        response.headers.add_vary_header("Host")
    return response


def public_base(request: Request, settings: Settings) -> str:
    """Where the register's pages are: the configured public URL (signs are printed, so it
    should be set in production), else the URL this request came in on."""
    return settings.register_public_url or str(request.base_url).rstrip("/")


@router.get(
    "/register.json",
    operation_id="get_register_json",
    summary="Every camera in the public register",
    response_model=RegisterList,
    responses=REGISTER_ERRORS,
)
def get_register_json(
    request: Request, session: SessionDep, settings: SettingsDep, _slot: ReadSlotDep
) -> Response:
    """Cameras of listed sites: where, who, why, what they measure, bytes sent in 24 h."""
    listing = register.register_list(session, settings, public_base(request, settings))
    stamp = latest([c.last_report_at for c in listing.cameras])
    return cached(request, settings, listing.model_dump_json(), "application/json", stamp)


@router.get(
    "/register.geojson",
    operation_id="get_register_geojson",
    summary="The public register as GeoJSON points",
    responses={200: {"content": {"application/geo+json": {}}}, **REGISTER_ERRORS},
)
def get_register_geojson(
    request: Request, session: SessionDep, settings: SettingsDep, _slot: ReadSlotDep
) -> Response:
    """A FeatureCollection, one point ([lon, lat]) per listed camera, the JSON's fields as
    properties."""
    listing = register.register_list(session, settings, public_base(request, settings))
    body = as_json(register.register_geojson(listing))
    stamp = latest([c.last_report_at for c in listing.cameras])
    return cached(request, settings, body, "application/geo+json", stamp)


@router.get(
    "/register/cameras/{camera_id}",
    operation_id="get_register_camera",
    summary="A listed camera's public page: what it sends, byte for byte",
    response_model=CameraPage,
    responses=REGISTER_ERRORS,
)
def get_register_camera(
    request: Request, camera_id: Label, session: SessionDep, settings: SettingsDep
) -> Response:
    """The register entry plus the latest report (numbers masked for private sites), the
    report fields in plain words, bytes received, software digests and validation."""
    page = register.camera_page(session, settings, public_base(request, settings), camera_id)
    return cached(
        request, settings, page.model_dump_json(), "application/json", page.last_report_at
    )


@router.get(
    "/register/cameras/{camera_id}/sign.svg",
    operation_id="get_register_sign",
    summary="A printable sign for the camera's pole, with a QR code to its page",
    responses={200: {"content": {SVG: {}}}, **REGISTER_ERRORS},
)
def get_register_sign(
    request: Request, camera_id: Label, session: SessionDep, settings: SettingsDep
) -> Response:
    """A5, SVG; texts in the register's language."""
    body = register.camera_sign(session, settings, public_base(request, settings), camera_id)
    response = cached(request, settings, body, SVG, None)
    response.headers["Content-Disposition"] = f'inline; filename="sign-{camera_id}.svg"'
    return response


@router.get(
    "/register/wire-schema.json",
    operation_id="get_register_wire_schema",
    summary="The JSON Schema of what a camera may send (a batch of interval reports)",
    responses={200: {"content": {"application/schema+json": {}}}, **REGISTER_ERRORS},
)
def get_wire_schema(request: Request, settings: SettingsDep) -> Response:
    """The committed schema: a report with anything else in it is refused."""
    body = json.dumps(REPORT_BATCH.committed(), indent=2, sort_keys=True)
    return cached(request, settings, body, "application/schema+json", None)
