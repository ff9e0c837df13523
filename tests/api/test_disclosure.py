"""Small-count suppression that cannot be undone (issue #9): no anonymous feed lets a withheld
count be worked out from what else it publishes, and no anonymous path reads planner data."""

from __future__ import annotations

import copy
import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_testkit import settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from readkit import SiteSpec, create_site, post, recent_hour, report
from sqlalchemy.orm import Session

from api.app import create_app
from api.db import make_engine, make_session_factory
from api.models import Site
from api.params import TimeRange
from api.schemas import CameraIn, LineIn, SiteIn
from api.services import open_data, registry
from api.services.disclosure import effective_threshold
from api.services.rollups import RollupDelta
from api.settings import Settings
from contract import IntervalReport

MAIN = {"main": {"up": "northbound", "down": "southbound"}}
QUARTER = timedelta(minutes=15)
CAR = ("main", "northbound", "car")
BUS = ("main", "southbound", "bus")
TRUCK = ("main", "northbound", "truck")


@pytest.fixture
def suppressing(database_url: str) -> Iterator[TestClient]:
    """An app that withholds counts from 1 to 4."""
    with TestClient(create_app(settings_for(database_url, open_min_count=5))) as client:
        yield client


def seed(client: TestClient, quarters: dict[tuple[str, str, str], list[int]]) -> dict[str, Any]:
    """A public one-camera site whose 15-minute counts are `quarters` (from 5 hours ago)."""
    app: FastAPI = client.app  # type: ignore[assignment]
    site, cams = create_site(app.state.settings, SiteSpec({"a": MAIN}))
    start = recent_hour(5)
    length = max(len(v) for v in quarters.values())
    camera = cams["a"]
    post(
        client,
        camera,
        [
            report(camera.camera, start + n * QUARTER, {k: v[n] for k, v in quarters.items()})
            for n in range(length)
        ],
    )
    end = start + timedelta(hours=-(-length // 4))
    return {"site": site, "camera": camera.camera, "window": {"from": start, "to": end}}


def counts(client: TestClient, seeded: dict[str, Any], granularity: str, fmt: str) -> str:
    params = {k: v.isoformat() for k, v in seeded["window"].items()} | {"granularity": granularity}
    response = client.get(f"/api/v1/open/sites/{seeded['site']}/counts.{fmt}", params=params)
    assert response.status_code == 200, response.text
    return response.text


def site_totals(client: TestClient, site: str) -> dict[str, Any]:
    """The site's 24-hour totals as each sites feed publishes them."""
    listed = client.get("/api/v1/open/sites.json").json()["sites"]
    features = client.get("/api/v1/open/sites.geojson").json()["features"]
    rows = csv.DictReader(io.StringIO(client.get("/api/v1/open/sites.csv").text))
    return {
        "json": next(s for s in listed if s["id"] == site)["totals_24h"],
        "geojson": next(f for f in features if f["id"] == site)["properties"]["totals_24h"],
        "csv": {k: v for k, v in next(r for r in rows if r["id"] == site).items() if "24h" in k},
    }


def test_the_hourly_row_does_not_give_away_a_withheld_quarter(suppressing: TestClient) -> None:
    """15-minute 2/0/5/0 with a threshold of 5: the hour must not say 7 (7 - 5 = the hidden 2)."""
    seeded = seed(suppressing, {CAR: [2, 0, 5, 0]})
    fine = [(r["count"], r["suppressed"]) for r in json_rows(suppressing, seeded, "15min")]
    assert fine == [(None, True), (0, False), (5, False), (0, False)]
    (hour,) = json_rows(suppressing, seeded, "1h")
    assert (hour["count"], hour["suppressed"]) == (5, True)
    (csv_hour,) = csv.DictReader(io.StringIO(counts(suppressing, seeded, "1h", "csv")))
    assert (csv_hour["count"], csv_hour["suppressed"]) == ("5", "true")
    totals = site_totals(suppressing, seeded["site"])
    assert totals["json"]["count"] == totals["geojson"]["count"] == 5
    assert totals["json"]["suppressed"] is totals["geojson"]["suppressed"] is True
    assert (totals["csv"]["count_24h"], totals["csv"]["suppressed_24h"]) == ("5", "true")


def json_rows(client: TestClient, seeded: dict[str, Any], granularity: str) -> list[Any]:
    rows: list[Any] = json.loads(counts(client, seeded, granularity, "json"))["rows"]
    return rows


# Two datasets that differ only in withheld cells (each stays within 1..4).
TWINS = (
    {CAR: [2, 0, 5, 0, 7, 7, 7, 7], BUS: [1, 1, 6, 8, 0, 0, 0, 0], TRUCK: [9, 9, 9, 1, 3, 0, 0, 0]},
    {CAR: [3, 0, 5, 0, 7, 7, 7, 7], BUS: [4, 2, 6, 8, 0, 0, 0, 0], TRUCK: [9, 9, 9, 4, 1, 0, 0, 0]},
)


def test_datasets_differing_only_in_withheld_cells_publish_the_same(
    suppressing: TestClient,
) -> None:
    """Every anonymous feed is byte-for-byte the same for both: nothing withheld can be derived
    from any combination of them (fine rows, hourly rows, per-class rows, site totals)."""
    first, second = (seed(suppressing, twin) for twin in TWINS)
    rename = {second["site"]: first["site"], second["camera"]: first["camera"]}

    def same(text: str) -> str:
        for old, new in rename.items():
            text = text.replace(old, new)
        return text

    for granularity in ("15min", "1h"):
        for fmt in ("json", "csv"):
            assert same(counts(suppressing, second, granularity, fmt)) == counts(
                suppressing, first, granularity, fmt
            ), (granularity, fmt)
    assert site_totals(suppressing, second["site"]) == site_totals(suppressing, first["site"])


def test_zero_is_published_and_a_withheld_cell_is_never_pinned(database_url: str) -> None:
    """A threshold of 2 would make 'withheld' mean exactly 1: 1 and 2 are withheld then."""
    with TestClient(create_app(settings_for(database_url, open_min_count=2))) as client:
        seeded = seed(client, {CAR: [1, 2, 0, 3]})
        fine = [(r["count"], r["suppressed"]) for r in json_rows(client, seeded, "15min")]
    assert fine == [(None, True), (None, True), (0, False), (3, False)]


ANONYMOUS = ("/api/v1/open/", "/api/v1/auth/", "/api/v1/meta", "/healthz", "/docs", "/openapi")


def test_no_anonymous_path_reads_planner_data(app: FastAPI, client: TestClient) -> None:
    """Every GET operation outside open data, auth, meta and health refuses an anonymous caller."""
    site, cams = create_site(app.state.settings, SiteSpec({"a": MAIN}))
    values = {
        "site_id": site,
        "camera_id": cams["a"].camera,
        "token_id": "0" * 16,
        "user_id": 1,
        "version": 1,
        "session_id": 1,
    }
    checked = []
    for path, operations in app.openapi()["paths"].items():
        if "get" not in operations or path.startswith(ANONYMOUS):
            continue
        response = client.get(path.format(**values), params={"site": site})
        assert response.status_code == 401, (path, response.status_code, response.text[:200])
        checked.append(path)
    assert {"/api/v1/sites", "/api/v1/counts/series", "/api/v1/devices/health"} <= set(checked)


def test_meta_stays_anonymous_and_holds_constants_only(client: TestClient) -> None:
    body = client.get("/api/v1/meta").json()
    assert set(body) <= {
        "version",
        "vehicle_classes",
        "heavy_vehicle_classes",
        "buckets",
        "max_buckets",
        "interval_choices",
        "licence",
        "open_data",
        "map",
    }


# --- the rule, proved over random data ------------------------------------------------------

KEYS = (CAR, ("main", "southbound", "car"), BUS)
LENGTHS = {"gap": 0, "quarters": 4, "hour": 1, "mixed": 3}
"""Reports per hour: none; four 15-minute ones; one 60-minute one; or, as after an interval
change, a 30-minute one and two 15-minute ones (that hour is then published at 1 h only)."""
small = st.one_of(st.integers(0, 4), st.integers(0, 14))
an_hour = st.sampled_from(["quarters", "quarters", "hour", "mixed", "gap"]).flatmap(
    lambda layout: st.tuples(
        st.just(layout),
        st.fixed_dictionaries(
            {k: st.lists(small, min_size=LENGTHS[layout], max_size=LENGTHS[layout]) for k in KEYS}
        ),
    )
)
Dataset = list[list[tuple[str, dict[tuple[str, str, str], list[int]]]]]
"""Per camera, per consecutive hour: its layout and each key's report counts."""


def reports_of(cameras: list[str], dataset: Dataset, start: datetime) -> Iterator[IntervalReport]:
    for camera, hours in zip(cameras, dataset, strict=True):
        for n, (layout, counts) in enumerate(hours):
            hour = start + timedelta(hours=n)
            lengths = {"quarters": [900] * 4, "hour": [3600], "mixed": [1800, 900, 900]}
            offset = 0
            for i, seconds in enumerate(lengths.get(layout, [])):
                moment = hour + timedelta(seconds=offset)
                yield report(camera, moment, {k: v[i] for k, v in counts.items()}, seconds)
                offset += seconds


def finest_cells(dataset: Dataset) -> Iterator[tuple[int, int, tuple[str, str, str], int, int]]:
    """(camera, hour, key, index, value) of every finest published cell: a quarter, or the
    whole hour where the hour is published at 1 h only (index 0)."""
    for c, hours in enumerate(dataset):
        for h, (layout, counts) in enumerate(hours):
            for key, values in counts.items():
                if layout == "quarters":
                    yield from ((c, h, key, i, v) for i, v in enumerate(values))
                elif layout in ("hour", "mixed"):
                    yield c, h, key, 0, sum(values)


def twin(
    dataset: Dataset, c: int, h: int, key: tuple[str, str, str], i: int, value: int
) -> Dataset:
    """The dataset with one finest cell set to `value`."""
    changed = copy.deepcopy(dataset)
    layout, counts = changed[c][h]
    if layout == "mixed":
        counts[key] = [value, 0, 0]
    else:
        counts[key][i] = value
    return changed


def published(session: Session, settings: Settings, dataset: Dataset, start: datetime) -> str:
    """Everything the anonymous feeds publish about a fresh site holding `dataset`, with its
    ids replaced so two such sites compare equal."""
    suffix = uuid.uuid4().hex[:8]
    site_id = f"p-{suffix}"
    registry.create_site(session, SiteIn(id=site_id, name="P", lat=1.0, lon=2.0, public=True))
    cameras = [f"c{n}-{suffix}" for n in range(len(dataset))]
    for camera in cameras:
        registry.register_camera(
            session,
            CameraIn(
                id=camera,
                site_id=site_id,
                interval_seconds=900,
                lines=[LineIn(name="main", direction_names=MAIN["main"])],
            ),
        )
    delta = RollupDelta()
    for one in reports_of(cameras, dataset, start):
        delta.add(one, gates=1)  # each camera has one line
    delta.apply(session)
    site = session.get(Site, site_id)
    assert site is not None
    session.refresh(site)
    now = datetime.now(UTC)
    span = TimeRange(start, start + timedelta(hours=max(len(h) for h in dataset)))
    parts = []
    granularities: tuple[open_data.Granularity, ...] = ("15min", "1h")
    for granularity in granularities:
        feed = open_data.plan_counts(session, settings, site, granularity, span, now)
        parts += ["".join(open_data.counts_json(feed)), "".join(open_data.counts_csv(feed))]
    sites = open_data.open_sites(session, settings, [site])
    parts += [
        sites.model_dump_json(),
        json.dumps(open_data.sites_geojson(sites)),
        open_data.sites_csv(sites),
    ]
    return "\n".join(parts).replace(suffix, "x")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    dataset=st.lists(st.lists(an_hour, min_size=1, max_size=3), min_size=1, max_size=2),
    min_count=st.sampled_from([2, 3, 5, 8]),
)
def test_no_withheld_cell_can_be_worked_out_from_all_feeds(
    database_url: str, dataset: Dataset, min_count: int
) -> None:
    """For random counts: every withheld finest cell can be changed to another withheld value
    without changing one byte of any anonymous feed (15-minute and 1-hour rows in JSON and
    CSV, the sites' 24-hour totals in JSON, GeoJSON and CSV). No combination of published
    numbers, per-class rows and totals included, can therefore pin a withheld count."""
    config = settings_for(database_url, open_min_count=min_count)
    threshold = effective_threshold(min_count)
    start = recent_hour(6)
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            original = published(session, config, dataset, start)
            for c, h, key, i, value in finest_cells(dataset):
                if 0 < value < threshold:
                    other = value % (threshold - 1) + 1
                    assert other != value  # withheld never pins a single value
                    changed = published(session, config, twin(dataset, c, h, key, i, other), start)
                    assert changed == original, (c, h, key, i, value, other)
            session.rollback()
    finally:
        engine.dispose()
