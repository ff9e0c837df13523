"""Planner queries: gaps stay gaps, bucketing, summaries, zones, raw and rollups agree."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from api_testkit import (
    T0,
    Login,
    Registered,
    add_account,
    batch,
    log_in,
    make_report,
    minutes,
    register,
    signed_in,
    zone_row,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.services.counts import CountFilter, count_series
from api.services.grid import BucketName, make_grid


@pytest.fixture
def client(planner: TestClient) -> TestClient:
    """Every read here is a signed-in planner's (device posts carry their own token)."""
    return planner


def post(client: TestClient, reg: Registered, *reports: Any) -> None:
    response = client.post("/api/v1/reports", json=batch(*reports), headers=reg.auth)
    assert response.status_code == 200, response.text


def get(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def window(hours: int = 1, start: datetime = T0) -> dict[str, str]:
    return {"from": start.isoformat(), "to": (start + timedelta(hours=hours)).isoformat()}


def test_a_bucket_without_reports_has_coverage_0_and_count_null(
    client: TestClient, registered: Registered
) -> None:
    post(client, registered, *(make_report(registered.camera, T0 + minutes(n)) for n in range(15)))
    post(client, registered, make_report(registered.camera, T0 + minutes(30), {}))
    body = get(
        client, "/api/v1/counts/series", camera=registered.camera, bucket="15min", **window()
    )
    assert [b["coverage"] for b in body["buckets"]] == [1.0, 0.0, pytest.approx(1 / 15), 0.0]
    assert body["series"][0]["counts"] == [75, None, 0, None]
    assert body["total"] == 75


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [("1min", [5, 5, None]), ("15min", [10]), ("1h", [10])],
)
def test_series_bucket_sizes(
    client: TestClient, registered: Registered, bucket: BucketName, expected: list[int | None]
) -> None:
    post(
        client,
        registered,
        make_report(registered.camera, T0),
        make_report(registered.camera, T0 + minutes(1)),
    )
    end = T0 + (
        minutes(3) if bucket == "1min" else minutes(15) if bucket == "15min" else minutes(60)
    )
    body = get(
        client,
        "/api/v1/counts/series",
        camera=registered.camera,
        bucket=bucket,
        **{"from": T0.isoformat(), "to": end.isoformat()},
    )
    assert body["series"][0]["counts"] == expected


def test_group_by_line_direction_and_class(client: TestClient, registered: Registered) -> None:
    counts = {("main", "northbound", "car"): 3, ("main", "southbound", "truck"): 2}
    post(client, registered, make_report(registered.camera, T0, counts))
    body = get(
        client,
        "/api/v1/counts/series",
        camera=registered.camera,
        bucket="1h",
        group_by="line,direction,vehicle_class",
        **window(),
    )
    keys = {(s["direction"], s["vehicle_class"]): s["counts"] for s in body["series"]}
    assert keys == {("northbound", "car"): [3], ("southbound", "truck"): [2]}
    only = get(
        client,
        "/api/v1/counts/series",
        camera=registered.camera,
        direction="southbound",
        **window(),
    )
    assert only["total"] == 2


def test_day_buckets_follow_the_site_timezone(app: FastAPI, client: TestClient) -> None:
    reg = register(app.state.settings, timezone="America/New_York")
    late_evening_local = datetime(2026, 3, 3, 3, 30, tzinfo=UTC)  # 22:30 on 2 March in New York
    post(client, reg, make_report(reg.camera, late_evening_local))
    body = get(
        client,
        "/api/v1/counts/series",
        site=reg.site,
        bucket="1d",
        **{"from": "2026-03-02T00:00:00", "to": "2026-03-04T00:00:00"},
    )
    assert body["timezone"] == "America/New_York"
    assert [b["start"] for b in body["buckets"]] == [
        "2026-03-02T00:00:00-05:00",
        "2026-03-03T00:00:00-05:00",
    ]
    assert body["series"][0]["counts"] == [5, None]


def test_summary_peak_hour_phf_and_heavy_share(client: TestClient, registered: Registered) -> None:
    reports = []
    for quarter, volume in enumerate([10, 20, 40, 30, 15, 5]):
        for minute in range(15):
            n = volume if minute == 0 else 0
            counts = {
                ("main", "northbound", "car"): n,
                ("main", "northbound", "bus"): 1 if minute == 0 else 0,
            }
            reports.append(
                make_report(registered.camera, T0 + minutes(15 * quarter + minute), counts)
            )
    post(client, registered, *reports)
    body = get(client, "/api/v1/counts/summary", camera=registered.camera, **window(2))
    assert body["total"] == 120 + 6
    assert body["by_class"]["bus"] == 6
    assert body["heavy_vehicles"] == 6
    assert body["heavy_share"] == pytest.approx(6 / 126, abs=1e-4)
    peak = body["peak_hour"]
    assert peak["volume"] == 20 + 40 + 30 + 15 + 4
    assert peak["max_15min_volume"] == 41
    assert peak["phf"] == pytest.approx(109 / (4 * 41), abs=1e-4)
    assert peak["start"].startswith("2026-03-02T08:15")


def test_hour_of_week(client: TestClient, registered: Registered) -> None:
    post(client, registered, make_report(registered.camera, T0))  # a Monday, 08:00 UTC
    body = get(client, "/api/v1/counts/hour-of-week", camera=registered.camera, **window(24 * 7))
    assert body["mean"][0][8] == 5
    assert body["samples"][0][8] == 1
    assert body["mean"][0][9] is None


def test_zone_series(client: TestClient, registered: Registered) -> None:
    post(
        client,
        registered,
        make_report(registered.camera, T0, zones=[zone_row(occupancy_time=0.4, los="B")]),
        make_report(
            registered.camera, T0 + minutes(1), zones=[zone_row(occupancy_time=0.6, los="D")]
        ),
        make_report(
            registered.camera,
            T0 + minutes(2),
            zones=[zone_row(mean_speed_kmh=None, p85_speed_kmh=None, speed_histogram=None)],
        ),
    )
    body = get(
        client,
        "/api/v1/zones/series",
        camera=registered.camera,
        bucket="15min",
        **window(0) | {"to": (T0 + minutes(30)).isoformat()},
    )
    (zone,) = body["series"]
    assert zone["occupancy_time"][0] == pytest.approx(0.5)
    assert zone["mean_speed_kmh"][0] == pytest.approx(30.0)
    assert zone["los"] == ["D", None]
    assert zone["coverage"][1] == 0
    assert zone["occupancy_time"][1] is None


def test_sites_listing_and_detail(client: TestClient, registered: Registered) -> None:
    sites = {s["id"]: s for s in get(client, "/api/v1/sites")["sites"]}
    assert sites[registered.site]["cameras"][0]["status"] == "never"
    detail = get(client, f"/api/v1/sites/{registered.site}")
    (line,) = detail["cameras"][0]["lines"]
    assert {"geometric": "down", "label": "southbound"} in line["directions"]
    assert detail["open_data"]["counts_1h_csv"].endswith("granularity=1h")
    assert client.get("/api/v1/sites/no-such-site").status_code == 404


@pytest.mark.parametrize("bucket", ["15min", "1h", "1d"])
def test_rollups_agree_with_raw_rows(app: FastAPI, client: TestClient, bucket: BucketName) -> None:
    reg = register(app.state.settings, timezone="Asia/Kolkata")
    reports = [
        make_report(reg.camera, T0 + minutes(7 * n), {("main", "northbound", "car"): n % 4})
        for n in range(40)
    ]
    post(client, reg, *reports)
    grid = make_grid(
        bucket, ZoneInfo("Asia/Kolkata"), T0 - timedelta(hours=2), T0 + timedelta(hours=8)
    )
    with app.state.session_factory() as session:
        fast = count_series(session, grid, CountFilter((reg.camera,)))
        slow = count_series(session, grid, CountFilter((reg.camera,)), source="raw")
    assert fast.series[0].counts == slow.series[0].counts
    assert fast.coverage == slow.coverage
    assert fast.total == sum(n % 4 for n in range(40))


def test_round_trip_through_asgi_transport(app: FastAPI, viewer_login: Login) -> None:
    """A contract report posted through httpx's ASGI transport reads back through the planner."""
    reg = register(app.state.settings)
    report = make_report(reg.camera, T0, {("main", "southbound", "motorcycle"): 7})

    async def round_trip() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://tally", cookies=viewer_login.cookies
        ) as client:
            posted = await client.post("/api/v1/reports", json=batch(report), headers=reg.auth)
            assert posted.status_code == 200
            response = await client.get(
                "/api/v1/counts/series",
                params={
                    "camera": reg.camera,
                    "bucket": "1min",
                    "group_by": "direction,vehicle_class",
                }
                | window(0)
                | {"to": (T0 + minutes(1)).isoformat()},
            )
            result: dict[str, Any] = response.json()
            return result

    body = asyncio.run(round_trip())
    assert body["series"] == [
        {
            "camera": None,
            "line": None,
            "direction": "southbound",
            "vehicle_class": "motorcycle",
            "counts": [7],
            "total": 7,
            "coverage": None,
        }
    ]


def test_planner_reads_need_a_login_and_keep_to_the_account_sites(app: FastAPI) -> None:
    """Anonymous planner calls are refused; a viewer restricted to one site sees only it,
    and a site outside the restriction reads as absent (404), public or not."""
    settings = app.state.settings
    mine, other = register(settings, public=False), register(settings, public=True)
    with TestClient(app) as anonymous:
        for path in ("/api/v1/sites", f"/api/v1/sites/{other.site}", "/api/v1/devices/health"):
            assert anonymous.get(path).status_code == 401, path
        assert (
            anonymous.get("/api/v1/counts/series", params={"site": other.site}).status_code == 401
        )
        viewer = log_in(anonymous, add_account(settings, "viewer", site_ids=[mine.site]))
    with signed_in(app, viewer) as client:
        assert [s["id"] for s in get(client, "/api/v1/sites")["sites"]] == [mine.site]
        assert get(client, f"/api/v1/sites/{mine.site}")["public"] is False
        assert client.get(f"/api/v1/sites/{other.site}").status_code == 404
        for params in ({"site": other.site}, {"camera": other.camera}):
            response = client.get("/api/v1/counts/series", params=params | window())
            assert response.status_code == 404, params
        health = get(client, "/api/v1/devices/health")["cameras"]
        assert [c["camera"] for c in health] == [mine.camera]
