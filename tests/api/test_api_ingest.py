"""Ingest: idempotency, conflicts, authentication, validation, limits, outages."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from accounts_testkit import admin_token_headers
from api_testkit import (
    Registered,
    batch,
    make_report,
    minutes,
    register,
    settings_for,
    zone_row,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import update

from api.app import create_app
from api.db import session_scope
from api.models import IntervalReportRecord
from api.services.tokens import revoke_token
from contract import IntervalReport

CAR_ROW = {"line": "main", "direction": "northbound", "vehicle_class": "car"}
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
"""Yesterday: inside the accepted window around server time, and hour-aligned."""
EIGHT_MIB = 8 * 1024 * 1024
JSON = {"Content-Type": "application/json"}
REFUSED_TOKENS = {
    "none": {},
    "unknown": {"Authorization": "Bearer tally_0123456789abcdef_" + "x" * 43},
    "malformed": {"Authorization": "Bearer not-a-token"},
}


def post(client: TestClient, reg: Registered, *reports: IntervalReport) -> Response:
    return client.post("/api/v1/reports", json=batch(*reports), headers=reg.auth)


def series(client: TestClient, reg: Registered, **params: Any) -> dict[str, Any]:
    query = {"camera": reg.camera, "from": T0.isoformat(), "to": (T0 + minutes(60)).isoformat()}
    response = client.get(
        "/api/v1/counts/series",
        params=query | params,
        headers=admin_token_headers(client.app),  # type: ignore[arg-type]
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_new_report_is_created_and_identical_resend_changes_nothing(
    client: TestClient, registered: Registered
) -> None:
    body = batch(
        make_report(registered.camera, T0), make_report(registered.camera, T0 + minutes(1))
    )
    first = client.post("/api/v1/reports", json=body, headers=registered.auth)
    assert first.status_code == 200, first.text
    assert first.json()["created"] == 2
    again = client.post("/api/v1/reports", json=body, headers=registered.auth)
    assert again.status_code == 200
    assert (again.json()["created"], again.json()["duplicates"]) == (0, 2)
    assert series(client, registered, bucket="1h")["total"] == 10


def test_conflicting_resend_is_409_and_keeps_the_first(
    client: TestClient, registered: Registered
) -> None:
    original = make_report(registered.camera, T0, {("main", "northbound", "car"): 5})
    changed = make_report(registered.camera, T0, {("main", "northbound", "car"): 9})
    fresh = make_report(registered.camera, T0 + minutes(1))
    assert (
        client.post("/api/v1/reports", json=batch(original), headers=registered.auth).status_code
        == 200
    )
    response = client.post("/api/v1/reports", json=batch(changed, fresh), headers=registered.auth)
    assert response.status_code == 409
    assert [r["status"] for r in response.json()["results"]] == ["conflict", "created"]
    assert series(client, registered, bucket="1min")["series"][0]["counts"][:2] == [5, 5]


def legacy_digest(report: IntervalReport) -> str:
    """The digest the ingest path stored before its rework (issue 12): canonical JSON."""
    canonical = json.dumps(report.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_reports_stored_with_the_legacy_digest_still_classify_resends(
    app: FastAPI, client: TestClient, registered: Registered
) -> None:
    """A device may resend, after an upgrade, what the old release stored."""
    original = make_report(registered.camera, T0, {("main", "northbound", "car"): 5})
    changed = make_report(registered.camera, T0, {("main", "northbound", "car"): 9})
    assert post(client, registered, original).status_code == 200
    with session_scope(app.state.session_factory) as session:
        session.execute(
            update(IntervalReportRecord)
            .where(IntervalReportRecord.report_id == original.report_id)
            .values(payload_sha256=legacy_digest(original))
        )

    resent = post(client, registered, original)
    differing = post(client, registered, changed)

    assert (resent.status_code, resent.json()["duplicates"]) == (200, 1)
    assert (differing.status_code, differing.json()["conflicts"]) == (409, 1)


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("Bearer tally_0123456789abcdef_" + "x" * 43, "unknown"),
        ("Bearer not-a-token", "malformed"),
        ("Basic dXNlcjpwdw==", "wrong scheme"),
    ],
)
def test_ingest_without_a_valid_token_is_401(
    client: TestClient, registered: Registered, header: str | None, why: str
) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.post(
        "/api/v1/reports", json=batch(make_report(registered.camera, T0)), headers=headers
    )
    assert response.status_code == 401, why


def parse_heavy_body(size: int) -> bytes:
    """JSON of many small objects (what the strict parser is slowest at), ``size`` bytes at
    most, whose top-level key repeats at the very end: the parser reads all of it before it
    can answer 400, so the answer costs exactly one full parse."""
    item = b'{"line": "main", "direction": "northbound", "vehicle_class": "car", "count": 5}'
    count = (size - len(b'{"reports": [], "reports": []}')) // (len(item) + 1)
    return b'{"reports": [' + b",".join([item] * count) + b'], "reports": []}'


@pytest.mark.parametrize("path", ["/api/v1/reports", "/api/v1/heartbeat"])
@pytest.mark.parametrize("headers", REFUSED_TOKENS.values(), ids=REFUSED_TOKENS.keys())
def test_a_refused_token_is_401_before_the_body_is_read(
    client: TestClient, path: str, headers: dict[str, str]
) -> None:
    not_json = parse_heavy_body(EIGHT_MIB)[:-1]  # truncated: parsing it would answer 422
    response = client.post(path, content=not_json, headers=headers | JSON)
    assert response.status_code == 401, response.text[:200]


def test_an_anonymous_8_mib_body_costs_a_small_fraction_of_parsing_it(
    client: TestClient, registered: Registered
) -> None:
    body = parse_heavy_body(EIGHT_MIB)

    def fastest(headers: dict[str, str], status: int) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            response = client.post("/api/v1/reports", content=body, headers=headers | JSON)
            times.append(time.perf_counter() - started)
            assert response.status_code == status, response.text[:200]
        return min(times)

    parsed = fastest(registered.auth, 400)  # the repeated key, found after a full parse
    anonymous = fastest({}, 401)
    print(f"FIGURE anonymous_8mib_s={anonymous:.3f} authenticated_8mib_s={parsed:.3f}")
    assert anonymous < parsed / 5


def test_the_failure_limit_is_checked_before_the_body(database_url: str) -> None:
    settings = settings_for(database_url).model_copy(update={"auth_failure_rate_limit": "2/minute"})
    with TestClient(create_app(settings)) as client:
        codes = [
            client.post("/api/v1/reports", content=b"{not json", headers=JSON).status_code
            for _ in range(3)
        ]
    assert codes == [401, 401, 429]


def test_revoked_token_is_401(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    with session_scope(app.state.session_factory) as session:
        assert revoke_token(session, reg.token_id)
    response = client.post(
        "/api/v1/reports", json=batch(make_report(reg.camera, T0)), headers=reg.auth
    )
    assert response.status_code == 401


def test_token_cannot_post_for_another_camera(client: TestClient, app: FastAPI) -> None:
    mine, other = register(app.state.settings), register(app.state.settings)
    response = client.post(
        "/api/v1/reports", json=batch(make_report(other.camera, T0)), headers=mine.auth
    )
    assert response.status_code == 403
    assert other.camera in response.json()["detail"]


@pytest.mark.parametrize(
    ("counts", "zones", "message"),
    [
        ({("side", "northbound", "car"): 1}, None, "has no line 'side'"),
        ({("main", "eastbound", "car"): 1}, None, "has no direction 'eastbound'"),
        ({}, [{"zone": "nowhere"}], "has no zone 'nowhere'"),
    ],
)
def test_unknown_line_direction_or_zone_is_rejected_clearly(
    client: TestClient,
    registered: Registered,
    counts: dict[tuple[str, str, str], int],
    zones: list[dict[str, Any]] | None,
    message: str,
) -> None:
    report = make_report(
        registered.camera, T0, counts, zones=[zone_row(**z) for z in zones] if zones else None
    )
    response = client.post("/api/v1/reports", json=batch(report), headers=registered.auth)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert series(client, registered)["total"] is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r | {"image": "AAAA"},
        lambda r: (
            r
            | {
                "counts": [
                    {"line": "main", "direction": "northbound", "vehicle_class": "car", "count": -1}
                ]
            }
        ),
        lambda r: (
            r
            | {
                "counts": [
                    {
                        "line": "main",
                        "direction": "northbound",
                        "vehicle_class": "car",
                        "count": 10**9,
                    }
                ]
            }
        ),
        lambda r: r | {"camera_id": "../etc/passwd"},
        lambda r: r | {"report_id": "00000000-0000-0000-0000-000000000000"},
        lambda r: r | {"interval_start": (T0 + timedelta(seconds=30)).isoformat()},
    ],
    ids=["extra-field", "negative", "too-big", "bad-label", "wrong-id", "unaligned"],
)
def test_malformed_reports_are_422(client: TestClient, registered: Registered, mutate: Any) -> None:
    body = {"reports": [mutate(make_report(registered.camera, T0).model_dump(mode="json"))]}
    response = client.post("/api/v1/reports", json=body, headers=registered.auth)
    assert response.status_code == 422


def test_body_over_the_limit_is_413(database_url: str) -> None:
    reg = register(settings_for(database_url))
    app = create_app(settings_for(database_url, max_body_bytes=2048))
    reports = [make_report(reg.camera, T0 + minutes(n)) for n in range(20)]
    with TestClient(app) as client:
        response = client.post("/api/v1/reports", json=batch(*reports), headers=reg.auth)
        assert response.status_code == 413
        chunked = client.post(
            "/api/v1/reports",
            content=iter([b'{"reports": [' + b" " * 4096, b"]}"]),
            headers=reg.auth | {"Content-Type": "application/json"},
        )
        assert chunked.status_code == 413


def test_ingest_is_rate_limited_per_token(database_url: str) -> None:
    reg = register(settings_for(database_url))
    app = create_app(
        settings_for(database_url).model_copy(update={"ingest_rate_limit": "2/minute"})
    )
    with TestClient(app) as client:
        codes = [
            client.post(
                "/api/v1/reports", json=batch(make_report(reg.camera, T0)), headers=reg.auth
            ).status_code
            for _ in range(3)
        ]
    assert codes == [200, 200, 429]


@pytest.mark.parametrize(
    "url",
    ["sqlite:////nonexistent-dir/tally.db", "postgresql+psycopg://postgres@127.0.0.1:1/tally"],
    ids=["sqlite", "postgresql"],
)
def test_database_down_is_503_so_the_device_keeps_its_outbox(url: str) -> None:
    app = create_app(settings_for(url))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/api/v1/reports",
            json=batch(make_report("cam-1", T0)),
            headers={"Authorization": "Bearer tally_0123456789abcdef_" + "x" * 43},
        )
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert "Traceback" not in response.text
        assert client.get("/healthz").status_code == 503


def test_heartbeat_updates_device_health(client: TestClient, registered: Registered) -> None:
    beat = {
        "camera_id": registered.camera,
        "sent_at": T0.isoformat(),
        "uptime_s": 120.0,
        "outbox_backlog": 3,
        "dropped_reports": 0,
        "streams": [
            {"camera_id": registered.camera, "state": "streaming", "reconnects": 1, "fps": 12.5}
        ],
        "config_version": 7,
    }
    response = client.post("/api/v1/heartbeat", json=beat, headers=registered.auth)
    assert response.status_code == 200, response.text
    health = client.get(
        "/api/v1/devices/health",
        params={"site": registered.site},
        headers=admin_token_headers(client.app),  # type: ignore[arg-type]
    ).json()
    (camera,) = health["cameras"]
    assert camera["status"] == "online"
    assert camera["reported_config_version"] == 7
    assert camera["last_heartbeat"]["outbox_backlog"] == 3
    assert camera["last_heartbeat"]["streams"][0]["state"] == "streaming"
    other = client.post(
        "/api/v1/heartbeat", json=beat | {"camera_id": "someone-else"}, headers=registered.auth
    )
    assert other.status_code == 403


@pytest.mark.parametrize("days", [1, 2, 14])
def test_device_health_lists_exactly_the_requested_days(
    client: TestClient, registered: Registered, days: int
) -> None:
    response = client.get(
        "/api/v1/devices/health",
        params={"site": registered.site, "days": days},
        headers=admin_token_headers(client.app),  # type: ignore[arg-type]
    )
    assert response.status_code == 200, response.text
    (camera,) = response.json()["cameras"]
    assert len(camera["coverage_by_day"]) == days
