"""Turning movements: rollups, TMC table, peak hour and PHF, heavy share, PCU, CSV and UTDF
exports, open data with small-count suppression, visibility and the OpenAPI listing.

Over SQLite and PostgreSQL. Every camera is a four-leg crossroads (legs north 0 deg, east 90,
south 180, west 270) reporting 15-minute intervals, so each 15-minute bin is one report and
the expected numbers can be written down by hand.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from api_testkit import (
    T0,
    Registered,
    add_account,
    batch,
    log_in,
    make_report,
    register,
    settings_for,
    signed_in,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    MetaData,
    Table,
    create_engine,
    func,
    insert,
    inspect,
    select,
    text,
)

from api import migrate
from api.app import create_app
from api.db import make_engine, make_session_factory, session_scope
from api.models import (
    Base,
    IntervalReportRecord,
    MovementCoverageRollup,
    MovementRecord,
    MovementRollup,
    UnmatchedRecord,
    UnmatchedRollup,
)
from api.services import camera_config, registry
from api.services.rollups import CLASS_COLUMNS, RollupDelta
from contract import INTERVAL_CHOICES_S, VEHICLE_CLASSES, IntervalReport, align_interval_start
from contract.camera import CameraSetup

QUARTER = timedelta(minutes=15)
GATES = {"north": 0.0, "east": 90.0, "south": 180.0, "west": 270.0}
LAYOUT: dict[str, Any] = {
    "interval_seconds": 900,
    "lines": [
        {"name": "north", "points": [[0.4, 0.1], [0.6, 0.1]]},
        {"name": "east", "points": [[0.9, 0.4], [0.9, 0.6]]},
        {"name": "south", "points": [[0.4, 0.9], [0.6, 0.9]]},
        {"name": "west", "points": [[0.1, 0.4], [0.1, 0.6]]},
    ],
    "intersection": {"legs": [{"gate": g, "bearing_deg": b} for g, b in GATES.items()]},
    "pcu": {"truck": 3.0},
}
Moves = dict[tuple[str, str, str], int]
"""(origin, destination, class) -> vehicles."""


def crossroads(
    settings_: Any, *, public: bool = True, layout: bool = True
) -> tuple[Registered, int]:
    """A camera with the crossroads set-up stored (without the layout: no intersection)."""
    reg = register(settings_, public=public, interval_seconds=900)
    setup = LAYOUT if layout else {k: v for k, v in LAYOUT.items() if k != "intersection"}
    engine = make_engine(settings_.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            saved = camera_config.save_config(
                session, reg.camera, CameraSetup.model_validate(setup)
            )
            version = saved.version
    finally:
        engine.dispose()
    return reg, version


def report(
    reg: Registered,
    version: int,
    quarter: int,
    moves: Moves,
    unmatched: dict[tuple[str, str], int] | None = None,
    coverage: float = 1.0,
) -> IntervalReport:
    """The v2 report of the `quarter`-th 15 minutes after T0."""
    made = make_report(
        reg.camera, T0 + quarter * QUARTER, {}, interval_seconds=900, coverage=coverage
    )
    return IntervalReport.model_validate(
        made.model_dump()
        | {
            "schema_version": 2,
            "config_version": version,
            "health": made.health.model_dump() | {"analysed_fps": 12.5, "detection_share": 0.5},
            "movements": [
                {"origin": o, "destination": d, "movement": None, "vehicle_class": c, "count": n}
                for (o, d, c), n in moves.items()
            ],
            "unmatched": [
                {"gate": g, "vehicle_class": c, "count": n}
                for (g, c), n in (unmatched or {}).items()
            ],
        }
    )


def post(client: TestClient, reg: Registered, *reports: IntervalReport) -> None:
    response = client.post("/api/v1/reports", json=batch(*reports), headers=reg.auth)
    assert response.status_code == 200, response.text


def window(quarters: int, **extra: Any) -> dict[str, Any]:
    return {"from": T0.isoformat(), "to": (T0 + quarters * QUARTER).isoformat()} | extra


def row(body: dict[str, Any], origin: str, destination: str) -> dict[str, Any]:
    return next(
        m for m in body["movements"] if (m["origin"], m["destination"]) == (origin, destination)
    )


# --- TMC table -------------------------------------------------------------------------------

CASES = [
    # quarter -> (moves, coverage); a quarter left out is a gap
    {
        0: (
            {
                ("north", "south", "car"): 8,
                ("north", "south", "truck"): 2,
                ("north", "east", "car"): 3,
            },
            1.0,
        ),
        1: ({("north", "south", "car"): 4}, 0.5),
        3: ({("west", "east", "bus"): 5, ("south", "south", "car"): 1}, 1.0),
    },
]


@pytest.mark.parametrize("sent", CASES)
def test_tmc_bins_gaps_coverage_and_names(
    app: FastAPI, client: TestClient, planner: TestClient, sent: dict[int, tuple[Moves, float]]
) -> None:
    reg, version = crossroads(app.state.settings)
    post(
        client,
        reg,
        *(report(reg, version, q, m, {("east", "car"): 2}, c) for q, (m, c) in sent.items()),
    )
    body = planner.get("/api/v1/movements/tmc", params=window(4, camera=reg.camera)).json()
    assert [b["coverage"] for b in body["bins"]] == [1.0, 0.5, 0.0, 1.0]
    assert body["layout"] is True
    assert [(x["gate"], x["compass"]) for x in body["legs"]] == [
        ("north", "N"),
        ("east", "E"),
        ("south", "S"),
        ("west", "W"),
    ]
    assert len(body["movements"]) == 16  # every leg pair, zeros included
    through = row(body, "north", "south")
    assert through["movement"] == "through"
    assert through["counts"] == [10, 4, None, 0]  # the missing quarter is a gap, not zero
    assert (through["total"], through["heavy"], through["heavy_share"]) == (14, 2, 0.1429)
    assert through["pcu"] == 12 + 2 * 3.0  # the camera's truck factor is 3
    assert row(body, "north", "east")["movement"] == "left"
    assert row(body, "north", "west")["movement"] == "right"
    assert row(body, "south", "south")["movement"] == "u_turn"
    assert row(body, "west", "east")["movement"] == "through"
    north = next(a for a in body["approaches"] if a["origin"] == "north")
    assert north["counts"] == [13, 4, None, 0]
    assert body["intersection"]["counts"] == [13, 4, None, 6]
    assert body["intersection"]["by_class"] == {
        "bicycle": 0,
        "car": 16,
        "motorcycle": 0,
        "bus": 5,
        "truck": 2,
    }
    assert body["unmatched"] == [{"gate": "east", "counts": [2, 2, None, 2], "total": 6}]

    hourly = planner.get(
        "/api/v1/movements/tmc", params=window(4, camera=reg.camera, bin="1h")
    ).json()
    assert [b["coverage"] for b in hourly["bins"]] == [0.625]
    assert row(hourly, "north", "south")["counts"] == [14]

    trucks = planner.get(
        "/api/v1/movements/tmc", params=window(4, camera=reg.camera, vehicle_class="truck")
    ).json()
    assert row(trucks, "north", "south")["counts"] == [2, 0, None, 0]
    assert row(trucks, "north", "south")["by_class"] == {"truck": 2}

    with session_scope(app.state.session_factory) as session:  # the rollup holds the raw rows
        raw = session.execute(
            select(func.sum(MovementRecord.count)).where(MovementRecord.camera_id == reg.camera)
        ).scalar()
        rolled = session.execute(
            select(func.sum(sum(getattr(MovementRollup, c) for c in CLASS_COLUMNS.values()))).where(
                MovementRollup.camera_id == reg.camera, MovementRollup.granularity_s == 900
            )
        ).scalar()
    assert raw == rolled == 23


def test_without_layout_rows_are_told_apart_by_destination(
    app: FastAPI, client: TestClient, planner: TestClient
) -> None:
    reg, version = crossroads(app.state.settings, layout=False)
    post(
        client,
        reg,
        report(reg, version, 0, {("north", "south", "car"): 3, ("north", "east", "car"): 1}),
    )
    body = planner.get("/api/v1/movements/tmc", params=window(1, camera=reg.camera)).json()
    assert (body["layout"], body["legs"]) == (False, [])
    assert [
        (m["origin"], m["destination"], m["movement"], m["counts"]) for m in body["movements"]
    ] == [
        ("north", "east", None, [1]),
        ("north", "south", None, [3]),
    ]
    utdf = planner.get("/api/v1/movements/utdf-volume.csv", params=window(1, camera=reg.camera))
    assert utdf.status_code == 422
    assert "intersection layout" in utdf.json()["detail"]


def test_nothing_reported_is_null_not_zero(app: FastAPI, planner: TestClient) -> None:
    reg, _ = crossroads(app.state.settings)
    body = planner.get("/api/v1/movements/tmc", params=window(2, camera=reg.camera)).json()
    assert row(body, "north", "south")["counts"] == [None, None]
    assert (body["intersection"]["total"], body["intersection"]["pcu"]) == (None, None)
    peak = planner.get("/api/v1/movements/peak-hour", params=window(8, camera=reg.camera)).json()
    assert (peak["peak_hour"], peak["intersection"], peak["movements"]) == (None, None, [])


def test_reports_that_count_no_movements_leave_gaps(
    app: FastAPI, client: TestClient, planner: TestClient
) -> None:
    """Only a v2 report counted with two or more gates watches movements: a version-1 report
    (quarter 0) and a v2 one counted with the one-line registration (version 1, quarter 2)
    leave gaps, not zeros; a quiet v2 crossroads quarter (3) is a zero. The same in the open
    feed, and only a site with movement data lists the movement feeds in the catalogue."""
    reg, version = crossroads(app.state.settings)
    v1 = make_report(reg.camera, T0, {}, interval_seconds=900).model_dump()
    post(
        client,
        reg,
        IntervalReport.model_validate(v1 | {"schema_version": 1}),
        report(reg, version, 1, {("north", "south", "car"): 6}),
        report(reg, 1, 2, {}),  # version 1: the registration, one line
        report(reg, version, 3, {}),
    )
    body = planner.get("/api/v1/movements/tmc", params=window(4, camera=reg.camera)).json()
    assert [b["coverage"] for b in body["bins"]] == [0.0, 1.0, 0.0, 1.0]
    assert row(body, "north", "south")["counts"] == [None, 6, None, 0]
    assert body["intersection"]["counts"] == [None, 6, None, 0]
    hourly = planner.get(
        "/api/v1/movements/tmc", params=window(4, camera=reg.camera, bin="1h")
    ).json()
    assert [b["coverage"] for b in hourly["bins"]] == [0.5]
    utdf = planner.get("/api/v1/movements/utdf-volume.csv", params=window(4, camera=reg.camera))
    assert [line[11:15] for line in utdf.text.splitlines()[3:]] == ["0815", "0845"]
    feed = client.get(
        f"/api/v1/open/sites/{reg.site}/movements.json", params=window(4, granularity="15min")
    ).json()
    assert sorted(r["interval_start"] for r in feed["rows"]) == [
        "2026-03-02T08:15:00Z",
        "2026-03-02T08:45:00Z",
    ]
    quiet = register(app.state.settings, public=True, interval_seconds=900)
    post(client, quiet, make_report(quiet.camera, T0, {}, interval_seconds=900))
    catalog = client.get("/api/v1/open/catalog.json").json()
    urls = {
        d["dct:identifier"]: [x["dcat:downloadURL"] for x in d["dcat:distribution"]]
        for d in catalog["dcat:dataset"]
    }
    assert len(urls[reg.site]) == 8
    assert sum(f"/{reg.site}/movements.csv?granularity=" in u for u in urls[reg.site]) == 2
    assert not any("movements" in u for u in urls[quiet.site])


# --- peak hour and PHF -----------------------------------------------------------------------


def test_peak_hour_and_phf_by_hand(app: FastAPI, client: TestClient, planner: TestClient) -> None:
    """Intersection per quarter: 10, 40, 50, 60, 30, 5 -> peak = quarters 1-4, volume 180,
    busiest 60, PHF 180 / 240 = 0.75. North->south in it: 30, 20, 50, 20 -> 120 / 200 = 0.6;
    west->east: 10, 30, 10, 10 (bus in quarter 2) -> 60 / 120 = 0.5."""
    reg, version = crossroads(app.state.settings)
    quarters: list[Moves] = [
        {("north", "south", "car"): 10},
        {("north", "south", "car"): 30, ("west", "east", "car"): 10},
        {("north", "south", "car"): 20, ("west", "east", "bus"): 30},
        {("north", "south", "car"): 50, ("west", "east", "car"): 10},
        {("north", "south", "car"): 20, ("west", "east", "car"): 10},
        {("north", "south", "car"): 5},
    ]
    post(client, reg, *(report(reg, version, q, m) for q, m in enumerate(quarters)))
    body = planner.get("/api/v1/movements/peak-hour", params=window(6, camera=reg.camera)).json()
    hour = body["peak_hour"]
    assert datetime.fromisoformat(hour["start"]) == T0 + QUARTER
    assert (hour["volume"], hour["max_15min_volume"], hour["phf"]) == (180, 60, 0.75)
    assert body["coverage"] == 1.0
    assert body["intersection"]["phf"] == 0.75
    through = row(body, "north", "south")
    assert (through["volume"], through["max_15min_volume"], through["phf"]) == (120, 50, 0.6)
    cross = row(body, "west", "east")
    assert (cross["volume"], cross["phf"], cross["heavy"], cross["heavy_share"]) == (
        60,
        0.5,
        30,
        0.5,
    )
    assert cross["pcu"] == 30 * 1.0 + 30 * 2.0
    assert row(body, "east", "west")["phf"] is None  # no traffic
    west = next(a for a in body["approaches"] if a["origin"] == "west")
    assert (west["volume"], west["phf"]) == (60, 0.5)


def test_peak_hour_needs_four_covered_quarters(
    app: FastAPI, client: TestClient, planner: TestClient
) -> None:
    reg, version = crossroads(app.state.settings)
    post(
        client,
        reg,
        *(report(reg, version, q, {("north", "south", "car"): 9}) for q in (0, 1, 2, 4, 5, 6)),
    )
    body = planner.get("/api/v1/movements/peak-hour", params=window(7, camera=reg.camera)).json()
    assert body["peak_hour"] is None


# --- exports ---------------------------------------------------------------------------------


def test_csv_and_utdf_parse_back(app: FastAPI, client: TestClient, planner: TestClient) -> None:
    reg, version = crossroads(app.state.settings)
    post(
        client,
        reg,
        report(
            reg,
            version,
            0,
            {("north", "south", "car"): 7, ("north", "west", "car"): 1, ("east", "east", "car"): 2},
        ),
        report(reg, version, 1, {("south", "west", "truck"): 4}),
        report(reg, version, 3, {("west", "north", "car"): 3}),
    )
    params = window(4, camera=reg.camera)
    response = planner.get("/api/v1/movements/tmc.csv", params=params)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 4 * 16
    through = [r["count"] for r in rows if (r["origin"], r["destination"]) == ("north", "south")]
    assert through == ["7", "0", "", "0"]
    assert {r["movement"] for r in rows} == {"left", "through", "right", "u_turn"}

    utdf = planner.get("/api/v1/movements/utdf-volume.csv", params=params | {"intid": 7})
    assert 'filename="Volume.csv"' in utdf.headers["content-disposition"]
    lines = utdf.text.splitlines()
    assert lines[:2] == ["Turning Movement Count", "15 Minute Counts"]
    table = list(csv.DictReader(lines[2:]))
    assert [(r["DATE"], r["TIME"]) for r in table] == [
        ("03/02/2026", t) for t in ("0800", "0815", "0845")
    ]
    first = table[0]
    assert (first["INTID"], first["SBT"], first["SBR"], first["WBU"]) == ("7", "7", "1", "2")
    assert table[1]["NBL"] == "4"  # from the south leg, out by the west leg: northbound left
    assert table[2]["EBL"] == "3"  # from the west leg, out by the north leg: eastbound left
    assert (
        sum(int(v) for r in table for k, v in r.items() if k not in ("DATE", "TIME", "INTID")) == 17
    )

    hourly = planner.get("/api/v1/movements/utdf-volume.csv", params=params | {"bin": "1h"})
    lines = hourly.text.splitlines()
    assert lines[1] == "60 Minute Counts"
    (only,) = csv.DictReader(lines[2:])
    assert (only["TIME"], only["SBT"], only["NBL"]) == ("0800", "7", "4")


# --- open data, visibility, OpenAPI ----------------------------------------------------------


def test_open_movements_suppress_small_counts(database_url: str) -> None:
    settings_ = settings_for(database_url, open_min_count=5)
    reg, version = crossroads(settings_)
    with TestClient(create_app(settings_)) as client:
        post(
            client,
            reg,
            *(
                report(reg, version, q, {("north", "south", "car"): 3, ("west", "east", "car"): 6})
                for q in range(4)
            ),
        )
        url = f"/api/v1/open/sites/{reg.site}/movements"
        quarter = client.get(f"{url}.json", params=window(4, granularity="15min")).json()
        hour = client.get(f"{url}.json", params=window(4, granularity="1h")).json()
        text = client.get(f"{url}.csv", params=window(4, granularity="1h")).text
    cells = {(r["origin"], r["destination"], r["interval_start"]): r for r in quarter["rows"]}
    small = cells[("north", "south", "2026-03-02T08:00:00Z")]
    assert (small["count"], small["suppressed"], small["movement"]) == (None, True, "through")
    assert cells[("west", "east", "2026-03-02T08:00:00Z")]["count"] == 6
    by_pair = {(r["origin"], r["destination"]): r for r in hour["rows"]}
    # the hour sums the published quarters only: the withheld 3s stay withheld
    assert (by_pair[("north", "south")]["count"], by_pair[("north", "south")]["suppressed"]) == (
        None,
        True,
    )
    assert by_pair[("west", "east")]["count"] == 24
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert {(r["origin"], r["movement"], r["count"], r["suppressed"]) for r in parsed} == {
        ("north", "through", "", "true"),
        ("west", "through", "24", "false"),
    }


def test_private_and_foreign_sites_are_404(app: FastAPI, client: TestClient) -> None:
    reg, _ = crossroads(app.state.settings, public=False)
    other = register(app.state.settings, public=False)
    assert client.get(f"/api/v1/open/sites/{reg.site}/movements.json").status_code == 404
    assert client.get("/api/v1/movements/tmc", params={"camera": reg.camera}).status_code == 401
    viewer = add_account(app.state.settings, "viewer", site_ids=[other.site])
    with TestClient(app) as anonymous:
        login = log_in(anonymous, viewer)
    with signed_in(app, login) as foreign:
        for path in ("tmc", "peak-hour", "tmc.csv", "utdf-volume.csv"):
            response = foreign.get(f"/api/v1/movements/{path}", params={"camera": reg.camera})
            assert response.status_code == 404, path


def test_openapi_lists_the_movement_operations(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operations = {
        op["operationId"]: path for path, item in schema["paths"].items() for op in item.values()
    }
    assert operations["get_movement_tmc"] == "/api/v1/movements/tmc"
    assert operations["get_movement_peak_hour"] == "/api/v1/movements/peak-hour"
    assert operations["get_movement_utdf_volume"] == "/api/v1/movements/utdf-volume.csv"
    assert {"get_movement_tmc_csv", "get_open_movements_json", "get_open_movements_csv"} <= set(
        operations
    )


def test_deleting_a_site_deletes_its_raw_rows_and_movement_rollups(
    app: FastAPI, client: TestClient
) -> None:
    """A report's rows and the rollups have no foreign key: a camera id used again later must
    start empty."""
    reg, version = crossroads(app.state.settings)
    post(client, reg, report(reg, version, 0, {("north", "south", "car"): 2}, {("east", "car"): 1}))
    tables = (
        *(IntervalReportRecord, MovementRecord, UnmatchedRecord),
        *(MovementRollup, UnmatchedRollup, MovementCoverageRollup),
    )

    def held() -> list[int]:
        with session_scope(app.state.session_factory) as session:
            return [
                len(session.scalars(select(m).where(m.camera_id == reg.camera)).all())
                for m in tables
            ]

    assert held() == [1, 1, 1, 2, 2, 2]  # one report; 15-minute and hourly rollups
    with session_scope(app.state.session_factory) as session:
        registry.delete_site(session, reg.site)
    assert held() == [0, 0, 0, 0, 0, 0]


# --- rollups equal the raw rows --------------------------------------------------------------

move_rows = st.lists(
    st.tuples(
        st.sampled_from(sorted(GATES)),
        st.sampled_from(sorted(GATES)),
        st.sampled_from(VEHICLE_CLASSES),
        st.integers(0, 50),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(INTERVAL_CHOICES_S), st.integers(0, 200), move_rows), max_size=8
    )
)
def test_rollup_delta_equals_raw_aggregation(sent: list[tuple[int, int, list[Any]]]) -> None:
    """For every granularity: a bucket holds the sum of the raw rows of the reports whose
    interval divides it (and nothing of the others)."""
    reports = []
    for seconds, slot, rows in sent:
        start = align_interval_start(T0 + timedelta(seconds=slot * seconds), seconds)
        moves: Counter[tuple[str, str, str]] = Counter()
        for o, d, c, n in rows:
            moves[(o, d, c)] += n
        made = make_report("cam-p", start, {}, interval_seconds=seconds)
        reports.append(
            IntervalReport.model_validate(
                made.model_dump()
                | {
                    "movements": [
                        {
                            "origin": o,
                            "destination": d,
                            "movement": None,
                            "vehicle_class": c,
                            "count": n,
                        }
                        for (o, d, c), n in moves.items()
                    ],
                    "unmatched": [
                        {"gate": o, "vehicle_class": c, "count": n} for o, _, c, n in rows[:1]
                    ],
                }
            )
        )
    delta = RollupDelta()
    for r in reports:
        delta.add(r, gates=len(GATES))
    for granularity in (900, 3600):
        held = [r for r in reports if granularity % r.interval_seconds == 0]
        watched = [v for (g, _, _), v in delta.movement_watch.items() if g == granularity]
        assert sum(v["covered_s"] for v in watched) == sum(r.interval_seconds for r in held)
        assert sum(v["reports"] for v in watched) == len(held)
        expected: Counter[tuple[Any, ...]] = Counter()
        gates: Counter[tuple[Any, ...]] = Counter()
        for r in reports:
            if granularity % r.interval_seconds:
                continue
            start_s = int(r.interval_start.timestamp())
            bucket = start_s - start_s % granularity
            for m in r.movements:
                expected[(bucket, m.origin, m.destination, m.vehicle_class)] += m.count
            for u in r.unmatched:
                gates[(bucket, u.gate, u.vehicle_class)] += u.count
        got = Counter(
            {
                (bucket, o, d, c): values[CLASS_COLUMNS[c]]
                for (g, _, bucket, o, d), values in delta.movements.items()
                if g == granularity
                for c in VEHICLE_CLASSES
            }
        )
        got_gates = Counter(
            {
                (bucket, gate, c): values[CLASS_COLUMNS[c]]
                for (g, _, bucket, gate), values in delta.unmatched.items()
                if g == granularity
                for c in VEHICLE_CLASSES
            }
        )
        assert +got == +expected
        assert +got_gates == +gates


# --- migration -------------------------------------------------------------------------------


def filled(table: Table, **values: Any) -> dict[str, Any]:
    """`values` plus a placeholder for every other required column of `table`."""
    placeholders = {Integer: 0, Float: 0.0, Boolean: False, JSON: {}, DateTime: T0}
    for column in table.columns:
        if column.name in values or column.nullable:
            continue
        kind = next((v for t, v in placeholders.items() if isinstance(column.type, t)), "x")
        values[column.name] = kind
    return values


@pytest.mark.parametrize(
    "empty_database_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_migration_fills_rollups_from_stored_rows(empty_database_url: str) -> None:
    """Movement rows stored before 0005 are in its rollups; a 30-minute report only in the
    hourly one; movement coverage only from v2 reports counted with two or more gates (the
    report's configuration version, else the registration); the tables match the models."""
    migrate.upgrade(empty_database_url, "0004")
    engine = create_engine(empty_database_url)
    start = int(T0.timestamp())
    try:
        tables = MetaData()
        tables.reflect(engine)
        t = tables.tables
        with engine.begin() as connection:
            connection.execute(insert(t["sites"]), filled(t["sites"], id="s"))
            connection.execute(insert(t["cameras"]), filled(t["cameras"], id="c", site_id="s"))
            for version, lines in ((1, 2), (2, 1)):  # version 1, the registration: two gates
                connection.execute(
                    insert(t["camera_configs"]),
                    filled(
                        t["camera_configs"],
                        camera_id="c",
                        version=version,
                        setup={"lines": [{"name": f"l{i}"} for i in range(lines)]},
                    ),
                )
            quiet = [  # (offset, schema version, config version) of reports without rows
                (3600, 2, 1),
                (4500, 1, None),
                (5400, 2, 2),
                (6300, 2, None),
            ]
            for n, (offset, schema, config) in enumerate(quiet):
                connection.execute(
                    insert(t["interval_reports"]),
                    filled(
                        t["interval_reports"],
                        report_id=f"q{n}",
                        camera_id="c",
                        interval_start_s=start + offset,
                        interval_seconds=900,
                        coverage=0.5,
                        config_version=config,
                        payload={"schema_version": schema},
                    ),
                )
            for n, (offset, seconds) in enumerate([(0, 900), (900, 900), (1800, 1800)]):
                key = {"camera_id": "c", "interval_start_s": start + offset}
                connection.execute(
                    insert(t["interval_reports"]),
                    filled(
                        t["interval_reports"],
                        report_id=str(n),
                        interval_seconds=seconds,
                        coverage=1.0,
                        payload={"schema_version": 2},
                        **key,
                    ),
                )
                connection.execute(
                    insert(t["movement_rows"]),
                    [
                        key | {"origin": "n", "destination": "s", "vehicle_class": c, "count": k}
                        for c, k in (("car", 5), ("truck", 1))
                    ],
                )
                connection.execute(
                    insert(t["unmatched_rows"]),
                    key | {"gate": "e", "vehicle_class": "bus", "count": 2},
                )
        migrate.upgrade(empty_database_url, "0005")
        with engine.connect() as connection:
            moves = connection.execute(
                text(
                    "SELECT granularity_s, bucket_start_s, n_car, n_truck FROM movement_rollups"
                    " ORDER BY granularity_s, bucket_start_s"
                )
            ).all()
            gates = connection.execute(
                text("SELECT granularity_s, n_bus FROM unmatched_rollups ORDER BY granularity_s")
            ).all()
            watched = connection.execute(
                text(
                    "SELECT granularity_s, bucket_start_s, covered_s, reports"
                    " FROM movement_coverage_rollups ORDER BY granularity_s, bucket_start_s"
                )
            ).all()
            diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [tuple(r) for r in moves] == [
            (900, start, 5, 1),
            (900, start + 900, 5, 1),
            (3600, start, 15, 3),
        ]
        assert [tuple(r) for r in gates] == [(900, 2), (900, 2), (3600, 6)]
        # the version-1 report and the one counted with a single line watched no movements
        assert [tuple(r) for r in watched] == [
            (900, start, 900.0, 1),
            (900, start + 900, 900.0, 1),
            (900, start + 3600, 450.0, 1),
            (900, start + 6300, 450.0, 1),
            (3600, start, 3600.0, 3),
            (3600, start + 3600, 900.0, 2),
        ]
        mine = {"movement_rollups", "unmatched_rollups", "movement_coverage_rollups"}
        assert [d for d in diffs if any(name in repr(d) for name in mine)] == []
        migrate.downgrade(empty_database_url, "0004")
        assert not mine & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
