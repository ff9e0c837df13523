"""Helpers for the API tests: settings, registration through the services, contract reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.db import make_engine, make_session_factory, session_scope
from api.schemas import CameraIn, LineIn, Role, SiteIn, UserIn, ZoneIn
from api.services import registry, tokens, users
from api.services.login import CSRF_HEADER, SESSION_COOKIE
from api.settings import Settings
from contract import IntervalReport, interval_report_id

TEST_SECRET = "api-tests-Vq7Lm2Rx9Tb4Nw8Kc3Hz6Pd1Fs5Gj0Ya"
TEST_PASSWORD = "correct horse battery staple"
MAIN_DIRECTIONS: dict[Any, str] = {"down": "southbound", "up": "northbound"}


def settings_for(database_url: str, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "ingest_rate_limit": "100000/minute",
        "auth_failure_rate_limit": "100000/minute",
        "login_rate_limit": "100000/minute",
        "ingest_max_age_days": 3650,  # the tests' reports are dated in March 2026 (T0)
    }
    return Settings(
        database_url=database_url,
        environment="test",
        secret_key=TEST_SECRET,
        **(defaults | overrides),
    )


@dataclass(frozen=True)
class Registered:
    """A site with one camera (line 'main': southbound/northbound; zone 'approach')."""

    site: str
    camera: str
    token: str
    token_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def register(
    settings: Settings, public: bool = True, timezone: str = "UTC", interval_seconds: int = 60
) -> Registered:
    """A fresh site and camera with a device token, through the same services as the CLI."""
    suffix = uuid.uuid4().hex[:8]
    site_id, camera_id = f"site-{suffix}", f"cam-{suffix}"
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            registry.create_site(
                session,
                SiteIn(
                    id=site_id,
                    name=f"Site {suffix}",
                    road="A1",
                    lat=51.5,
                    lon=-0.1,
                    timezone=timezone,
                    public=public,
                ),
            )
            registry.register_camera(
                session,
                CameraIn(
                    id=camera_id,
                    site_id=site_id,
                    interval_seconds=interval_seconds,
                    lines=[
                        LineIn(
                            name="main", direction_names={"down": "southbound", "up": "northbound"}
                        )
                    ],
                    zones=[ZoneIn(name="approach", lanes=2, length_m=40.0)],
                ),
            )
            issued = tokens.issue_device_token(session, settings.secret_key, camera_id)
    finally:
        engine.dispose()
    return Registered(site=site_id, camera=camera_id, token=issued.token, token_id=issued.token_id)


@dataclass(frozen=True)
class Account:
    """A planner account made for a test, with its password."""

    email: str
    password: str
    role: Role


def add_account(
    settings: Settings,
    role: Role = "viewer",
    site_ids: list[str] | None = None,
    password: str = TEST_PASSWORD,
) -> Account:
    """A fresh account (unique e-mail) through the same service as the CLI and admin API."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    spec = UserIn(email=email, display_name=f"Test {role}", role=role, site_ids=site_ids)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            users.create_user(session, spec, password)
    finally:
        engine.dispose()
    return Account(email=email, password=password, role=role)


@dataclass(frozen=True)
class Login:
    """A login session: the cookie and the CSRF token that changes must send with it."""

    cookie: str
    csrf_token: str

    @property
    def cookies(self) -> dict[str, str]:
        return {SESSION_COOKIE: self.cookie}

    @property
    def headers(self) -> dict[str, str]:
        return {CSRF_HEADER: self.csrf_token}


def log_in(client: TestClient, account: Account) -> Login:
    """Sign in through the real login endpoint."""
    response = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200, response.text
    return Login(cookie=response.cookies[SESSION_COOKIE], csrf_token=response.json()["csrf_token"])


def signed_in(app: FastAPI, login: Login) -> TestClient:
    """A client that sends the login's cookie and CSRF token with every request."""
    return TestClient(
        app, raise_server_exceptions=False, cookies=login.cookies, headers=login.headers
    )


T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def make_report(
    camera: str,
    start: datetime,
    counts: dict[tuple[str, str, str], int] | None = None,
    *,
    interval_seconds: int = 60,
    coverage: float = 1.0,
    zones: list[dict[str, Any]] | None = None,
) -> IntervalReport:
    """A valid report built with the contract; counts keyed by (line, direction, class)."""
    counts = {("main", "northbound", "car"): 5} if counts is None else counts
    return IntervalReport(
        report_id=interval_report_id(camera, start),
        camera_id=camera,
        interval_start=start,
        interval_seconds=interval_seconds,
        partial=coverage < 1,
        coverage=coverage,
        frames_processed=900,
        fps=15.0,
        counts=[
            {"line": line, "direction": d, "vehicle_class": c, "count": n}  # type: ignore[misc]
            for (line, d, c), n in counts.items()
        ],
        zones=zones or [],
        health={"reconnects": 0, "dropped_reports": 0},  # type: ignore[arg-type]
    )


def zone_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "zone": "approach",
        "mean_vehicles": 2.0,
        "max_vehicles": 4,
        "occupancy_time": 0.5,
        "occupancy_area": 0.2,
        "mean_speed_kmh": 30.0,
        "p85_speed_kmh": 40.0,
        "speed_histogram": [0, 0, 1, 5, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        "stopped_share": 0.1,
        "queue_vehicles": 1.0,
        "queue_m": 7.5,
        "density_veh_km_lane": 20.0,
        "los": "C",
    }
    return row | overrides


def batch(*reports: IntervalReport) -> dict[str, Any]:
    """A ReportBatch body as a worker would send it."""
    return {"reports": [r.model_dump(mode="json") for r in reports]}


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)
