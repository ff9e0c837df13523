"""Device health (issue #9): dead-lettered reports from the heartbeat, and cameras that report
full coverage but no vehicles for far longer than their own history makes plausible."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from accounts_testkit import admin_token_headers
from api_testkit import settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient
from readkit import SiteSpec, create_site, hour_floor

from api.app import create_app
from api.db import session_scope
from api.models import CameraRollup, DeviceHealth

MAIN = {"main": {"up": "northbound", "down": "southbound"}}
DAY_WITH_QUIET_NIGHT = [0] * 4 + [10] * 20
"""A day of hourly vehicle counts: four empty night hours, traffic otherwise."""


@dataclass(frozen=True)
class History:
    """Hourly (share watched, vehicles) up to the last complete hour, oldest first; `stop`
    complete hours at the end have no report at all."""

    hours: list[tuple[float, int]]
    suspect: bool
    reason_has: tuple[str, ...] = ()
    stop: int = 0


def full(vehicles: list[int]) -> list[tuple[float, int]]:
    return [(1.0, n) for n in vehicles]


CASES = {
    "settled, 12 empty hours after 4-hour nights": History(
        full(DAY_WITH_QUIET_NIGHT * 14 + [0] * 12),
        True,
        ("12 fully watched hours", "longest such run in the 28 days before was 4 h"),
    ),
    "settled, 7 empty hours after 4-hour nights": History(
        full(DAY_WITH_QUIET_NIGHT * 14 + [0] * 7), False
    ),
    "settled, never empty, 3 empty hours": History(full([10] * 24 * 7 + [0] * 3), True, ("3 ",)),
    "settled, never empty, 2 empty hours": History(full([10] * 24 * 7 + [0] * 2), False),
    "new camera, 6 empty hours": History(full([10] * 20 + [0] * 6), False),
    "new camera, 12 empty hours": History(
        full([10] * 20 + [0] * 12), True, ("too little history",)
    ),
    "half watched, 20 empty hours": History([(1.0, 10)] * 72 + [(0.5, 0)] * 20, False),
    "stopped reporting after 20 empty hours": History(full([10] * 72 + [0] * 20), False, stop=3),
    "traffic in the last hour": History(full([10] * 72 + [0] * 20 + [5]), False),
}


def store_heartbeat(app: FastAPI, camera: str, **fields: Any) -> None:
    """A last heartbeat of `camera`, received now: a quiet worker, except for `fields`."""
    now = datetime.now(UTC)
    quiet: dict[str, Any] = {
        "camera_id": camera,
        "received_at": now,
        "sent_at": now,
        "uptime_s": 60.0,
        "outbox_backlog": 0,
        "dropped_reports": 0,
        "config_version": 1,
        "streams": [],
    }
    with session_scope(app.state.session_factory) as session:
        session.add(DeviceHealth(**(quiet | fields)))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_camera_that_counts_nothing_for_implausibly_long_is_flagged(
    app: FastAPI, client: TestClient, case: History
) -> None:
    site, cams = create_site(app.state.settings, SiteSpec({"a": MAIN}))
    camera = cams["a"].camera
    last = hour_floor(datetime.now(UTC)) - timedelta(hours=1 + case.stop)
    with session_scope(app.state.session_factory) as session:
        session.add_all(
            CameraRollup(
                granularity_s=3600,
                camera_id=camera,
                bucket_start_s=int((last - timedelta(hours=n)).timestamp()),
                covered_s=share * 3600,
                reports=60,
                n_car=vehicles,
            )
            for n, (share, vehicles) in enumerate(reversed(case.hours))
        )
    body = client.get(
        "/api/v1/devices/health", params={"site": site, "days": 2}, headers=admin_token_headers(app)
    ).json()
    (health,) = body["cameras"]
    assert health["suspect_frozen"] is case.suspect, health["suspect_reason"]
    if case.suspect:
        for part in case.reason_has:
            assert part in health["suspect_reason"]
    else:
        assert health["suspect_reason"] is None


def test_dead_lettered_reports_come_from_the_last_heartbeat(
    app: FastAPI, client: TestClient
) -> None:
    site, cams = create_site(app.state.settings, SiteSpec({"a": MAIN, "b": MAIN}))
    store_heartbeat(app, cams["a"].camera, dead_lettered_reports=3)
    body = client.get(
        "/api/v1/devices/health", params={"site": site}, headers=admin_token_headers(app)
    ).json()
    dead = {c["camera"]: c["dead_lettered_reports"] for c in body["cameras"]}
    assert dead == {cams["a"].camera: 3, cams["b"].camera: 0}
    assert all(c["suspect_frozen"] is False for c in body["cameras"])


CODE, MODEL, OTHER = "a" * 64, "b" * 64, "c" * 64


@pytest.mark.parametrize(
    ("approved", "reported", "expected"),
    [
        ([CODE, MODEL], (CODE, MODEL), True),
        ([CODE], (CODE, MODEL), False),
        ([CODE, MODEL], (OTHER, MODEL), False),
        ([CODE, MODEL], None, None),
    ],
    ids=["both approved", "model not approved", "code not approved", "nothing reported"],
)
def test_software_off_the_approved_list_is_flagged(
    database_url: str,
    approved: list[str],
    reported: tuple[str, str] | None,
    expected: bool | None,
) -> None:
    app = create_app(settings_for(database_url, approved_software=approved))
    site, cams = create_site(app.state.settings, SiteSpec({"a": MAIN}))
    code, model = reported or (None, None)
    store_heartbeat(
        app,
        cams["a"].camera,
        software_version="0.1.0" if reported else None,
        code_sha256=code,
        model_sha256=model,
    )
    with TestClient(app) as client:
        body = client.get(
            "/api/v1/devices/health", params={"site": site}, headers=admin_token_headers(app)
        ).json()
    (camera,) = body["cameras"]
    assert camera["software"]["approved"] is expected
    assert camera["software"]["code_sha256"] == code


def test_meta_serves_bucket_sizes_limits_and_the_map_layer(database_url: str) -> None:
    settings = settings_for(
        database_url,
        map_tile_url="https://tiles.example/{z}/{x}/{y}.png",
        map_tile_attribution="© Example contributors",
    )
    with TestClient(create_app(settings)) as client:
        body = client.get("/api/v1/meta").json()
    assert body["buckets"] == {"1min": 60, "15min": 900, "1h": 3600, "1d": 86400}
    assert body["max_buckets"] == 10_000
    assert body["map"] == {
        "tile_url": "https://tiles.example/{z}/{x}/{y}.png",
        "attribution": "© Example contributors",
    }
