"""The application factory: settings in, a configured FastAPI app out."""

from __future__ import annotations

import gc
import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI, Request, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool

from api import __version__
from api.coalesce import Coalescer
from api.db import make_engine, make_session_factory
from api.deps import check_device_tokens
from api.limiting import RateLimits
from api.middleware import BodySizeLimit, SecurityHeaders, inline_script_policy
from api.routers import (
    admin,
    auth,
    commissioning,
    health,
    ingest,
    movements,
    open_data,
    planner,
    register,
    setup,
    sta,
    users,
)
from api.services import partitions
from api.services.errors import (
    AlreadyExistsError,
    DomainError,
    ForbiddenError,
    NotFoundError,
)
from api.services.tokens import RecentTokens
from api.settings import Settings

log = logging.getLogger("api")
DOCS_ASSETS = "/docs-assets"
DATABASE_RETRY_AFTER_S = 30
DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFoundError: status.HTTP_404_NOT_FOUND,
    AlreadyExistsError: status.HTTP_409_CONFLICT,
    ForbiddenError: status.HTTP_403_FORBIDDEN,
}
DESCRIPTION = """Tally's central API. Edge workers post interval reports (counts and aggregate
congestion only, never imagery); planners query series; anyone may read the open-data feeds.
See docs/api-planner.md for the read side."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the engine lives as long as the app (disposed on shutdown)."""
    settings = settings or Settings()
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(partitions.prepare_at_start, engine)
        gc.freeze()  # the start-up heap is permanent: no collection need walk it again
        yield
        engine.dispose()

    app = FastAPI(
        title="Tally API",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.session_factory = make_session_factory(engine)
    app.state.rate_limits = RateLimits.from_settings(settings)
    app.state.recent_tokens = RecentTokens()
    app.state.device_gate = Coalescer(partial(check_device_tokens, app.state))
    app.state.ingest_queue = ingest.ingest_queue(app.state)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "If-None-Match", "X-CSRF-Token"],
        expose_headers=["ETag", "Last-Modified", "Link", "X-Licence", "X-Attribution"],
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, settings=settings)  # outermost: 413s get headers too
    add_error_handlers(app)
    routers = (ingest, auth, planner, open_data, register, admin, users, health, setup, sta)
    for module in (*routers, commissioning, movements):
        app.include_router(module.router)
    add_docs(app)
    mount_dashboard(app)
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Domain errors get their status; a database outage is 503; nothing leaks a traceback."""

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        code = next(
            (code for kind, code in DOMAIN_STATUS.items() if isinstance(exc, kind)),
            status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return JSONResponse(
            {"detail": "database unavailable; retry later"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return JSONResponse({"detail": "internal server error"}, status_code=500)


def add_docs(app: FastAPI) -> None:
    """Swagger UI from the vendored bundle: the docs page works with no network."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), "docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Tally API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
        page.headers["Content-Security-Policy"] = inline_script_policy(page.body)
        return page


def dashboard_static() -> Path | None:
    """dashboard/static of the installed `dashboard` package, when it exists."""
    spec = importlib.util.find_spec("dashboard")
    for location in (spec.submodule_search_locations or []) if spec else []:
        static = Path(location) / "static"
        if static.is_dir():
            return static
    return None


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at / (mounted last, so every API path wins)."""
    static = dashboard_static()
    if static is not None:
        app.mount("/", StaticFiles(directory=static, html=True), name="dashboard")
