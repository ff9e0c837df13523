"""OGC SensorThings API v1.1 (read-only), at /sta/v1.1: open data, no token, public sites.

The standard describes itself (the service root lists the entity sets and conformance
classes), so these routes stay out of the OpenAPI document; docs/sensorthings.md covers
them. Errors are SensorThings-style JSON: {"code", "type": "error", "message"}.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, ProgrammingError

from api.deps import SessionDep, SettingsDep
from api.read_limits import ReadSlotDep
from api.routers.open_data import as_json, cached
from api.services.errors import NotFoundError
from api.services.sta import reads
from api.services.sta.context import Context
from api.services.sta.options import QueryError

log = logging.getLogger(__name__)
PREFIX = "/sta/v1.1"
router = APIRouter(prefix=PREFIX, tags=["SensorThings"], include_in_schema=False)


def sta_error(code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "type": "error", "message": message},
        status_code=code,
        headers={"Access-Control-Allow-Origin": "*"},
    )


def context(request: Request, session: SessionDep, settings: SettingsDep) -> Context:
    root = str(request.base_url).rstrip("/") + PREFIX
    return Context(session, settings, root, int(time.time()))


def respond(request: Request, ctx: Context, resource: str) -> Response:
    """The answer, cached like the other open-data feeds (content ETag, 304, licence)."""
    params = dict(request.query_params)
    try:
        payload = reads.answer(ctx, resource, params)
    except QueryError as exc:
        return sta_error(400, str(exc))
    except NotFoundError as exc:
        return sta_error(404, str(exc))
    except (DataError, ProgrammingError) as exc:
        log.warning("SensorThings query the database refused: %s", type(exc).__name__)
        return sta_error(400, "the database could not evaluate this query")
    if isinstance(payload, str):
        return cached(request, ctx.settings, payload, "text/plain", None)
    return cached(request, ctx.settings, as_json(payload), "application/json", None)


@router.get("")
def service_root(
    request: Request, session: SessionDep, settings: SettingsDep, _slot: ReadSlotDep
) -> Response:
    """The entity sets, the conformance classes, the licence and the attribution."""
    return respond(request, context(request, session, settings), "")


@router.get("/{resource:path}")
def resource(
    resource: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _slot: ReadSlotDep,
) -> Response:
    """A collection, an entity, a navigation path, a property, its $value or $ref."""
    return respond(request, context(request, session, settings), resource)
