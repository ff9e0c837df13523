"""Zone speeds merged exactly (histograms summed, v85 from the merged histogram), queue and
PCU density in the zone series, and PCU totals in the counts summary (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from api_testkit import T0, Registered, batch, make_report, minutes, register, zone_row
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from api.db import session_scope
from api.services import camera_config
from api.services.zones import SpeedMerge, histogram_percentile
from contract import SPEED_BIN_EDGES_KMH, ZoneRow
from contract.camera import CameraSetup, Zone
from detector.congestion import summarise_zone
from detector.currency import ZoneSample

BINS = len(SPEED_BIN_EDGES_KMH)


@pytest.fixture
def client(planner: TestClient) -> TestClient:
    return planner


def bins(**counts: int) -> list[int]:
    """A histogram from counts keyed by bin lower edge, e.g. ``bins(k30=6)``."""
    histogram = [0] * BINS
    for key, n in counts.items():
        histogram[SPEED_BIN_EDGES_KMH.index(int(key[1:]))] = n
    return histogram


def post(client: TestClient, reg: Registered, *reports: Any) -> None:
    response = client.post("/api/v1/reports", json=batch(*reports), headers=reg.auth)
    assert response.status_code == 200, response.text


def zone_series(client: TestClient, reg: Registered, bucket: str, hours: float = 1) -> Any:
    params = {
        "camera": reg.camera,
        "bucket": bucket,
        "from": T0.isoformat(),
        "to": (T0 + minutes(int(60 * hours))).isoformat(),
    }
    response = client.get("/api/v1/zones/series", params=params)
    assert response.status_code == 200, response.text
    (series,) = response.json()["series"]
    return response.json(), series


# Hand computations. Two quarter-hours of 10 vehicles each:
#   A: 4 at 20-30, 6 at 30-40 km/h, mean 31, v85 38;  B: 2 at 30-40, 8 at 40-50, mean 43, v85 48.
# Merged: 4 / 8 / 8 vehicles at 20-30 / 30-40 / 40-50. Mean (31 x 10 + 43 x 10) / 20 = 37.
# v85: rank 0.85 x 20 = 17; 12 vehicles lie below 40, so 40 + (17 - 12) / 8 x 10 = 46.25.
# (The mean of the two v85s would be 43: too low, the fast quarter-hour weighs as much.)
QUARTER_A = {"speed_histogram": bins(k20=4, k30=6), "mean_speed_kmh": 31.0, "p85_speed_kmh": 38.0}
QUARTER_B = {"speed_histogram": bins(k30=2, k40=8), "mean_speed_kmh": 43.0, "p85_speed_kmh": 48.0}


@pytest.mark.parametrize(
    ("histogram", "share", "expected"),
    [
        (bins(k20=4, k30=8, k40=8), 0.85, 46.25),
        (bins(k30=10), 0.85, 38.5),  # one bin: 30 + 8.5 / 10 x 10
        (bins(k30=10), 0.5, 35.0),
        (bins(k0=1, k50=1), 0.85, 57.0),  # rank 1.7: 0.7 of the way into the 50-60 bin
        (bins(k120=1, k130=9), 0.85, 130.0),  # the open last bin: its lower edge
    ],
)
def test_histogram_percentile_by_hand(histogram: list[int], share: float, expected: float) -> None:
    assert histogram_percentile(histogram, share) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("reports", "histogram", "mean", "v85"),
    [
        ([QUARTER_A, QUARTER_B], bins(k20=4, k30=8, k40=8), 37.0, 46.25),
        ([QUARTER_A], QUARTER_A["speed_histogram"], 31.0, 38.0),  # one report: its own v85
        # All at or above 130 km/h: the open bin's edge, held up to the smallest report v85.
        (
            [
                {"speed_histogram": bins(k130=5), "mean_speed_kmh": 140.0, "p85_speed_kmh": 142},
                {"speed_histogram": bins(k130=5), "mean_speed_kmh": 150.0, "p85_speed_kmh": 160},
            ],
            bins(k130=10),
            145.0,
            142.0,
        ),
    ],
)
def test_speed_merge_by_hand(
    reports: list[dict[str, Any]], histogram: list[int], mean: float, v85: float
) -> None:
    merged = SpeedMerge()
    for report in reports:
        merged.add(report["speed_histogram"], report["mean_speed_kmh"], report["p85_speed_kmh"])
    assert merged.histogram == histogram
    assert merged.vehicles == sum(histogram)
    assert merged.mean() == pytest.approx(mean)
    assert merged.v85() == pytest.approx(v85)


def row_of(speeds: list[float]) -> ZoneRow:
    """The row the worker would send for one interval whose vehicles had these speeds."""
    sample = ZoneSample("approach", 0.0, 1, 0.1, tuple(speeds), 0, 0, 0.0, None, None)
    return summarise_zone(Zone(name="approach", polygon=[(0, 0), (1, 0), (1, 1)]), [sample], True)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(0, 129.9, allow_nan=False), min_size=1, max_size=40),
        min_size=1,
        max_size=8,
    )
)
def test_merging_reports_is_exact_for_histogram_and_mean(intervals: list[list[float]]) -> None:
    """However the vehicles fall into reports, the merged histogram and mean are those of
    all vehicles together, and v85 lies in the bin of all vehicles' exact v85."""
    merged = SpeedMerge()
    for speeds in intervals:
        row = row_of(speeds)
        assert row.speed_histogram is not None
        assert row.mean_speed_kmh is not None
        assert row.p85_speed_kmh is not None
        merged.add(row.speed_histogram, row.mean_speed_kmh, row.p85_speed_kmh)
    everyone = [s for speeds in intervals for s in speeds]
    assert merged.histogram == row_of(everyone).speed_histogram
    assert merged.mean() == pytest.approx(np.mean(everyone), rel=1e-9, abs=1e-9)
    exact = float(np.percentile(everyone, 85, method="inverted_cdf"))
    low_edge = SPEED_BIN_EDGES_KMH[int(np.searchsorted(SPEED_BIN_EDGES_KMH, exact, "right")) - 1]
    assert low_edge <= merged.v85() <= low_edge + 10


def test_the_series_merges_speeds_and_serves_queue_and_density(
    app: FastAPI, client: TestClient
) -> None:
    registered = register(app.state.settings, interval_seconds=900)
    rows = [
        zone_row(**QUARTER_A, queue_m=10.0, density_pcu_km_lane=22.0, los="D"),
        zone_row(**QUARTER_B, queue_m=20.0, density_pcu_km_lane=30.0, los="F"),
    ]
    post(
        client,
        registered,
        *(
            make_report(registered.camera, T0 + minutes(15 * q), zones=[row], interval_seconds=900)
            for q, row in enumerate(rows)
        ),
        make_report(  # an uncalibrated report: no speeds, but still congestion figures
            registered.camera,
            T0 + minutes(30),
            zones=[zone_row(mean_speed_kmh=None, p85_speed_kmh=None, speed_histogram=None)],
            interval_seconds=900,
        ),
    )
    body, quarters = zone_series(client, registered, "15min")
    assert body["speed_bin_edges_kmh"] == list(SPEED_BIN_EDGES_KMH)
    assert quarters["speed_histogram"] == [
        QUARTER_A["speed_histogram"],
        QUARTER_B["speed_histogram"],
        None,
        None,
    ]
    assert quarters["speed_vehicles"] == [10, 10, None, None]
    assert quarters["mean_speed_kmh"][:2] == [pytest.approx(31.0), pytest.approx(43.0)]
    assert quarters["p85_speed_kmh"] == [pytest.approx(38.0), pytest.approx(48.0), None, None]
    assert quarters["queue_m"] == [10.0, 20.0, 7.5, None]
    assert quarters["queue_vehicles"] == [1.0, 1.0, 1.0, None]
    assert quarters["density_veh_km_lane"] == [20.0, 20.0, 20.0, None]
    assert quarters["density_pcu_km_lane"] == [22.0, 30.0, None, None]  # v1-style row: none
    assert quarters["los"] == ["D", "F", "C", None]
    assert quarters["coverage"] == [1.0, 1.0, 1.0, 0.0]  # a gap stays a gap

    _, hour = zone_series(client, registered, "1h")
    assert hour["speed_histogram"] == [bins(k20=4, k30=8, k40=8)]
    assert hour["speed_vehicles"] == [20]
    assert hour["mean_speed_kmh"] == [pytest.approx(37.0)]
    assert hour["p85_speed_kmh"] == [pytest.approx(46.25)]  # not (38 + 48) / 2 = 43
    assert hour["queue_m"] == [pytest.approx(37.5 / 3)]
    assert hour["density_pcu_km_lane"] == [pytest.approx(26.0)]
    assert hour["los"] == ["F"]
    assert hour["coverage"] == [pytest.approx(0.75)]


def test_reports_shorter_than_the_bucket_merge_alike(
    client: TestClient, registered: Registered
) -> None:
    """Minute reports merge the same way as quarter-hour ones: 15 reports of one vehicle
    each at 35 km/h and 5 more at 55 km/h give 20 vehicles in one quarter-hour."""
    post(
        client,
        registered,
        *(
            make_report(
                registered.camera,
                T0 + minutes(m),
                zones=[
                    zone_row(
                        speed_histogram=bins(k30=1) if m < 15 else bins(k50=1),
                        mean_speed_kmh=35.0 if m < 15 else 55.0,
                        p85_speed_kmh=35.0 if m < 15 else 55.0,
                    )
                ],
            )
            for m in range(20)
        ),
    )
    _, quarters = zone_series(client, registered, "15min", hours=0.5)
    assert quarters["speed_vehicles"] == [15, 5]
    _, hour = zone_series(client, registered, "1h")
    assert hour["speed_histogram"] == [bins(k30=15, k50=5)]
    assert hour["mean_speed_kmh"] == [pytest.approx((15 * 35 + 5 * 55) / 20)]
    # rank 17: 15 vehicles below 50, so 50 + (17 - 15) / 5 x 10 = 54, within [35, 55]
    assert hour["p85_speed_kmh"] == [pytest.approx(54.0)]


def summary(client: TestClient, **params: Any) -> Any:
    window = {"from": T0.isoformat(), "to": (T0 + minutes(60)).isoformat()}
    response = client.get("/api/v1/counts/summary", params=params | window)
    assert response.status_code == 200, response.text
    return response.json()


MIX = {
    ("main", "northbound", "car"): 10,
    ("main", "northbound", "truck"): 4,
    ("main", "southbound", "motorcycle"): 5,
    ("main", "southbound", "bicycle"): 5,
    ("main", "southbound", "bus"): 1,
}


def test_summary_pcu_totals_use_each_cameras_factors(
    app: FastAPI, client: TestClient, registered: Registered
) -> None:
    post(client, registered, make_report(registered.camera, T0, MIX))
    by_default = summary(client, camera=registered.camera)
    # 10 x 1 + 4 x 2.5 + 5 x 0.4 + 5 x 0.2 + 1 x 2 = 25
    assert by_default["pcu_total"] == pytest.approx(25.0)
    assert by_default["pcu_by_class"] == {
        "bicycle": 1.0,
        "car": 10.0,
        "motorcycle": 2.0,
        "bus": 2.0,
        "truck": 10.0,
    }
    assert by_default["pcu_factors"][registered.camera]["truck"] == 2.5
    assert (by_default["total"], by_default["heavy_vehicles"]) == (25, 5)
    assert by_default["heavy_share"] == pytest.approx(5 / 25)

    with session_scope(app.state.session_factory) as session:
        camera_config.save_config(session, registered.camera, SETUP_HEAVY_TRUCKS, note="trucks")
    own = summary(client, camera=registered.camera)
    assert own["pcu_total"] == pytest.approx(27.0)  # 4 trucks x 0.5 more
    assert own["pcu_factors"][registered.camera]["truck"] == 3.0
    assert own["total"] == by_default["total"]


SETUP_HEAVY_TRUCKS = CameraSetup.model_validate(
    {
        "lines": [
            {
                "name": "main",
                "points": [[0.0, 0.5], [1.0, 0.5]],
                "direction_names": {"down": "southbound", "up": "northbound"},
            }
        ],
        "zones": [
            {
                "name": "approach",
                "polygon": [[0.2, 0.3], [0.8, 0.3], [0.8, 0.9], [0.2, 0.9]],
                "lanes": 2,
                "length_m": 40.0,
            }
        ],
        "interval_seconds": 60,
        "pcu": {"truck": 3.0},
    }
)
"""The registered camera's lines and zone, with trucks at 3 PCU."""


def test_summary_without_coverage_has_no_pcu(client: TestClient, registered: Registered) -> None:
    empty = summary(client, camera=registered.camera)
    assert empty["pcu_total"] is None
    assert set(empty["pcu_by_class"].values()) == {None}
