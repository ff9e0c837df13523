"""Helpers for the read-side tests: extra cameras, recent times, rollup seeding."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from api_testkit import Registered, batch, make_report
from fastapi.testclient import TestClient

from api.db import make_engine, make_session_factory, session_scope
from api.models import Camera
from api.schemas import CameraIn, LineIn, SiteIn
from api.services import registry, tokens
from api.services.rollups import RollupDelta
from api.settings import Settings
from contract import IntervalReport


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def recent_hour(hours_ago: int) -> datetime:
    """The start of the UTC hour `hours_ago` complete hours before the current one."""
    return hour_floor(datetime.now(UTC)) - timedelta(hours=hours_ago)


LineSpec = Mapping[str, Mapping[Any, str]]
"""line name -> {geometric direction: label}."""


@dataclass(frozen=True)
class SiteSpec:
    """A site to create: its cameras (id suffix -> lines) and interval."""

    cameras: Mapping[str, LineSpec]
    interval_seconds: int = 900
    public: bool = True
    name: str = ""
    road: str = "A1"


def create_site(settings: Settings, spec: SiteSpec) -> tuple[str, dict[str, Registered]]:
    """A fresh site with the given cameras, each with a device token (ids get a unique suffix)."""
    suffix = uuid.uuid4().hex[:8]
    site_id = f"site-{suffix}"
    engine = make_engine(settings.database_url)
    cameras: dict[str, Registered] = {}
    try:
        with session_scope(make_session_factory(engine)) as session:
            registry.create_site(
                session,
                SiteIn(
                    id=site_id,
                    name=spec.name or f"Site {suffix}",
                    road=spec.road,
                    lat=51.5,
                    lon=-0.1,
                    public=spec.public,
                ),
            )
            for key, lines in spec.cameras.items():
                camera_id = f"{key}-{suffix}"
                registry.register_camera(
                    session,
                    CameraIn(
                        id=camera_id,
                        site_id=site_id,
                        interval_seconds=spec.interval_seconds,
                        lines=[
                            LineIn(name=name, direction_names=dict(labels))
                            for name, labels in lines.items()
                        ],
                    ),
                )
                issued = tokens.issue_device_token(session, settings.secret_key, camera_id)
                cameras[key] = Registered(site_id, camera_id, issued.token, issued.token_id)
    finally:
        engine.dispose()
    return site_id, cameras


def report(
    camera: str,
    start: datetime,
    counts: Mapping[tuple[str, str, str], int],
    interval_seconds: int = 900,
    coverage: float = 1.0,
) -> IntervalReport:
    """A contract report with the given (line, direction, class) counts (15 min by default)."""
    return make_report(
        camera, start, dict(counts), interval_seconds=interval_seconds, coverage=coverage
    )


def post(client: TestClient, camera: Registered, reports: Iterable[IntervalReport]) -> None:
    response = client.post("/api/v1/reports", json=batch(*reports), headers=camera.auth)
    assert response.status_code == 200, response.text


def seed_rollups(settings: Settings, reports: Iterable[IntervalReport]) -> None:
    """Fold reports into the rollups only (what the count feeds read), through RollupDelta:
    quick to seed months of data without posting every report."""
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            delta = RollupDelta()
            for one in reports:
                camera = session.get(Camera, one.camera_id)
                delta.add(one, gates=len(camera.lines) if camera is not None else 0)
            delta.apply(session)
    finally:
        engine.dispose()
