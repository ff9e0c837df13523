"""The live check: the last minutes of a camera's stored reports, per interval and line
direction, every class summed; an interval without a report is absent, never zero."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from accounts_testkit import admin_token_headers, now_minute, sign_in
from api_testkit import T0, Registered, batch, make_report, register
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.models import Camera
from api.services.live import live_counts
from contract import IntervalReport

NORTH, SOUTH = ("main", "northbound"), ("main", "southbound")


def post(client: TestClient, reg: Registered, *reports: IntervalReport) -> None:
    response = client.post("/api/v1/reports", json=batch(*reports), headers=reg.auth)
    assert response.status_code == 200, response.text


def report(
    reg: Registered,
    start: datetime,
    counts: dict[tuple[str, str, str], int],
    coverage: float = 1.0,
    config_version: int | None = None,
) -> IntervalReport:
    made = make_report(reg.camera, start, counts, coverage=coverage)
    return made.model_copy(update={"config_version": config_version})


def line_counts(*pairs: tuple[tuple[str, str], int]) -> list[dict[str, Any]]:
    return [{"line": line, "direction": d, "count": n} for (line, d), n in pairs]


def test_recent_intervals_newest_first_with_a_gap_left_out(
    client: TestClient, app: FastAPI
) -> None:
    reg = register(app.state.settings)
    minute = now_minute()
    post(
        client,
        reg,
        report(reg, minute - timedelta(minutes=4), {("main", "northbound", "car"): 2}),
        report(
            reg,
            minute - timedelta(minutes=3),
            {
                ("main", "northbound", "car"): 3,
                ("main", "northbound", "truck"): 1,
                ("main", "southbound", "bicycle"): 4,
            },
            coverage=0.5,
            config_version=1,
        ),
        # minute - 2: no report (the worker was down)
        report(reg, minute - timedelta(minutes=1), {}),
        report(reg, minute - timedelta(minutes=30), {("main", "northbound", "car"): 99}),
    )
    viewer = sign_in(app, "viewer")
    response = client.get(
        f"/api/v1/cameras/{reg.camera}/live", params={"minutes": 10}, headers=viewer.headers
    )
    assert response.status_code == 200, response.text
    live = response.json()
    assert (live["camera_id"], live["interval_seconds"]) == (reg.camera, 60)
    assert live["last_report_at"] is not None
    starts = [datetime.fromisoformat(i["start"]) for i in live["intervals"]]
    assert starts == [minute - timedelta(minutes=n) for n in (1, 3, 4)]
    assert [i["coverage"] for i in live["intervals"]] == [1.0, 0.5, 1.0]
    assert [i["config_version"] for i in live["intervals"]] == [None, 1, None]
    assert [i["counts"] for i in live["intervals"]] == [
        [],
        line_counts((NORTH, 4), (SOUTH, 4)),
        line_counts((NORTH, 2)),
    ]
    assert live["totals"] == line_counts((NORTH, 6), (SOUTH, 4))


# (now after T0, minutes) -> interval starts (minutes after T0) in the answer
WINDOWS = [
    (timedelta(minutes=5), 5, [4, 3, 2, 1, 0]),
    (timedelta(minutes=5), 1, [4]),
    (timedelta(minutes=5, seconds=30), 1, [5, 4]),  # 08:04 ends after 08:04:30
    (timedelta(minutes=5, seconds=30), 5, [5, 4, 3, 2, 1, 0]),
    (timedelta(minutes=3), 60, [2, 1, 0]),  # an interval from `now` on is not in its past
    (timedelta(minutes=-1), 5, []),
]


@pytest.mark.parametrize(("after", "minutes", "expected"), WINDOWS)
def test_the_window_holds_every_interval_overlapping_the_last_minutes(
    client: TestClient, app: FastAPI, after: timedelta, minutes: int, expected: list[int]
) -> None:
    reg = register(app.state.settings)
    post(client, reg, *(report(reg, T0 + timedelta(minutes=n), {}) for n in range(8)))
    with app.state.session_factory() as session:
        found = session.get(Camera, reg.camera)
        assert found is not None
        live = live_counts(session, found, minutes, T0 + after)
    assert [i.start for i in live.intervals] == [T0 + timedelta(minutes=n) for n in expected]
    assert live.now == T0 + after
    assert live.totals == []


@pytest.mark.parametrize("minutes", [0, 61, "x"])
def test_minutes_outside_1_to_60_are_refused(
    client: TestClient, app: FastAPI, minutes: Any
) -> None:
    reg = register(app.state.settings)
    response = client.get(
        f"/api/v1/cameras/{reg.camera}/live",
        params={"minutes": minutes},
        headers=admin_token_headers(app),
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anonymous", 401),
        ("viewer", 200),
        ("viewer of the site", 200),
        ("viewer of another site", 404),
        ("editor", 200),
        ("admin token", 200),
    ],
)
def test_viewers_of_the_site_read_the_live_check(
    client: TestClient, app: FastAPI, who: str, expected: int
) -> None:
    reg = register(app.state.settings, public=False)
    other = register(app.state.settings).site
    headers = {
        "anonymous": lambda: {},
        "viewer": lambda: sign_in(app, "viewer").headers,
        "viewer of the site": lambda: sign_in(app, "viewer", [reg.site]).headers,
        "viewer of another site": lambda: sign_in(app, "viewer", [other]).headers,
        "editor": lambda: sign_in(app, "editor").headers,
        "admin token": lambda: admin_token_headers(app),
    }[who]()
    response = client.get(f"/api/v1/cameras/{reg.camera}/live", headers=headers)
    assert response.status_code == expected, response.text
    if expected == 404:
        missing = client.get("/api/v1/cameras/cam-nowhere/live", headers=headers)
        assert missing.status_code == 404
        assert response.json()["detail"] == missing.json()["detail"].replace(
            "cam-nowhere", reg.camera
        )


def test_the_window_bounds_the_interval_start_so_the_index_serves_it(app: FastAPI) -> None:
    """`start + length > since` alone cannot use the (camera, start) index: the query also
    bounds the start itself from below, and the plan shows the index range on both sides."""
    reg = register(app.state.settings)
    engine = app.state.session_factory.kw["bind"]
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if "FROM interval_reports" in statement and "coverage" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with app.state.session_factory() as session:
            found = session.get(Camera, reg.camera)
            assert found is not None
            live_counts(session, found, 5, T0)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = captured
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            text = " ".join(str(row[-1]) for row in plan)
            assert "interval_start_s>? AND interval_start_s<?" in text, text
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            text = " ".join(str(row[0]) for row in plan)
            assert "Index Cond" in text, text
            assert "interval_start_s >" in text.split("Index Cond", 1)[1], text
