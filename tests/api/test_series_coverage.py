"""Coverage belongs to the series it qualifies: on a site with two cameras, the one that was
down reads null in its own series, not 0 (issue #9: gaps drawn as zero on multi-camera sites)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from accounts_testkit import admin_token_headers
from fastapi import FastAPI
from fastapi.testclient import TestClient
from readkit import SiteSpec, create_site, post, recent_hour, report

MAIN = {"main": {"up": "northbound", "down": "southbound"}}
SIDE = {"side": {"right": "eastbound", "left": "westbound"}}
QUARTER = timedelta(minutes=15)


@pytest.fixture
def two_cameras(app: FastAPI, client: TestClient) -> dict[str, Any]:
    """Camera a (line main) reports both quarters; camera b (line side) only the first."""
    site, cams = create_site(app.state.settings, SiteSpec({"a": MAIN, "b": SIDE}))
    start = recent_hour(3)
    a, b = cams["a"].camera, cams["b"].camera
    post(
        client,
        cams["a"],
        [report(a, start + n * QUARTER, {("main", "northbound", "car"): 4}) for n in range(2)],
    )
    post(client, cams["b"], [report(b, start, {("side", "eastbound", "car"): 7})])
    window = {"from": start.isoformat(), "to": (start + 2 * QUARTER).isoformat()}
    return {"site": site, "a": a, "b": b, "window": window, "headers": admin_token_headers(app)}


def series_of(body: dict[str, Any], **key: str) -> dict[str, Any]:
    (found,) = [s for s in body["series"] if all(s[k] == v for k, v in key.items())]
    return found


@pytest.mark.parametrize(
    ("params", "down_series", "up_series"),
    [
        ({"group_by": "camera"}, {"camera": "b"}, {"camera": "a"}),
        ({"group_by": "line"}, {"line": "side"}, {"line": "main"}),
        ({"group_by": "line,direction"}, {"direction": "eastbound"}, {"direction": "northbound"}),
        ({"group_by": "direction,vehicle_class"}, {"direction": "eastbound"}, None),
        ({"group_by": "camera,line,direction,vehicle_class"}, {"camera": "b"}, {"camera": "a"}),
        ({"direction": "eastbound"}, {}, None),
    ],
)
def test_a_camera_that_was_down_reads_null_in_its_own_series(
    client: TestClient,
    two_cameras: dict[str, Any],
    params: dict[str, str],
    down_series: dict[str, str],
    up_series: dict[str, str] | None,
) -> None:
    ids = {"a": two_cameras["a"], "b": two_cameras["b"]}
    response = client.get(
        "/api/v1/counts/series",
        params={"site": two_cameras["site"], "bucket": "15min"} | two_cameras["window"] | params,
        headers=two_cameras["headers"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [b["coverage"] for b in body["buckets"]] == [1.0, 0.5]  # the whole site
    down = series_of(body, **{k: ids.get(v, v) for k, v in down_series.items()})
    assert down["counts"] == [7, None]
    assert down["coverage"] == [1.0, 0.0]
    if up_series is not None:
        up = series_of(body, **{k: ids.get(v, v) for k, v in up_series.items()})
        assert up["counts"] == [4, 4]
        assert up["coverage"] == [1.0, 1.0]


def test_a_series_over_every_camera_carries_no_coverage_of_its_own(
    client: TestClient, two_cameras: dict[str, Any]
) -> None:
    """Without grouping the one series spans the site: its coverage is the buckets' coverage."""
    body = client.get(
        "/api/v1/counts/series",
        params={"site": two_cameras["site"], "bucket": "15min"} | two_cameras["window"],
        headers=two_cameras["headers"],
    ).json()
    (only,) = body["series"]
    assert only["counts"] == [11, 4]
    assert only["coverage"] is None


def test_a_line_on_both_cameras_is_covered_by_both(app: FastAPI, client: TestClient) -> None:
    """The same line name on two cameras: its series is watched while either camera is up."""
    site, cams = create_site(app.state.settings, SiteSpec({"a": MAIN, "b": MAIN | SIDE}))
    start = recent_hour(3)
    a, b = cams["a"].camera, cams["b"].camera
    post(client, cams["a"], [report(a, start, {("main", "northbound", "car"): 2})])
    post(
        client,
        cams["b"],
        [report(b, start + n * QUARTER, {("side", "eastbound", "car"): 1}) for n in range(2)],
    )
    body = client.get(
        "/api/v1/counts/series",
        params={
            "site": site,
            "bucket": "15min",
            "group_by": "line",
            "from": start.isoformat(),
            "to": (start + 2 * QUARTER).isoformat(),
        },
        headers=admin_token_headers(app),
    ).json()
    main = series_of(body, line="main")
    assert main["counts"] == [2, 0]  # b watched the second quarter and saw nothing on main
    assert main["coverage"] is None  # both cameras have line main: the site's coverage
    side = series_of(body, line="side")
    assert side["counts"] == [1, 1]
    assert side["coverage"] == [1.0, 1.0]
