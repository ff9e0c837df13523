"""Validation sessions: whole-interval windows, the manual tally, and the comparison with the
camera's stored counts (coverage below 1 and no final result while a report is missing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from accounts_testkit import admin_token_headers, count_rows, events_for, sign_in
from api_testkit import T0, Registered, batch, make_report, register
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from api.db import session_scope
from api.models import AuditEvent, Camera, CameraConfig, ValidationSession
from api.services import validation
from api.services.audit import CLI
from api.services.validation import setup_directions
from contract import VEHICLE_CLASSES
from contract.camera import CameraSetup
from contract.camera import CountLine as SetupLine

WINDOW_START = T0 + timedelta(minutes=1)
"""Sessions opened at T0 + 10 s on a 60 s camera start at the next boundary."""
NC, NB, ST, SC = (
    ("main", "northbound", "car"),
    ("main", "northbound", "bus"),
    ("main", "southbound", "truck"),
    ("main", "southbound", "car"),
)


def key(k: tuple[str, str, str]) -> str:
    return "/".join(k)


def open_at(app: FastAPI, reg: Registered, now: datetime, minutes: int = 3) -> int:
    """A session opened at an injected time, through the service the route uses."""
    with session_scope(app.state.session_factory) as session:
        camera = session.get(Camera, reg.camera)
        assert camera is not None
        return validation.open_session(session, camera, minutes, CLI, now).id


def post(client: TestClient, reg: Registered, reports: list[Any]) -> None:
    if reports:
        response = client.post("/api/v1/reports", json=batch(*reports), headers=reg.auth)
        assert response.status_code == 200, response.text


def in_window(
    reg: Registered, minute: int, counts: dict[tuple[str, str, str], int], coverage: float = 1.0
) -> Any:
    return make_report(
        reg.camera, WINDOW_START + timedelta(minutes=minute), counts, coverage=coverage
    )


# (now, interval seconds, minutes) -> (window start, window end), seconds after T0
WINDOWS = [
    (timedelta(0), 60, 15, (0, 900)),  # on a boundary: starts now
    (timedelta(microseconds=1), 60, 15, (60, 960)),
    (timedelta(seconds=59, microseconds=999_999), 60, 1, (60, 120)),
    (timedelta(seconds=10), 300, 1, (300, 600)),  # rounded up to one whole interval
    (timedelta(seconds=10), 300, 7, (300, 900)),
    (timedelta(minutes=14), 900, 15, (900, 1800)),
    (timedelta(minutes=1), 3600, 120, (3600, 10800)),
]


@pytest.mark.parametrize(("after", "interval", "minutes", "expected"), WINDOWS)
def test_the_window_starts_at_the_next_boundary_and_covers_whole_intervals(
    after: timedelta, interval: int, minutes: int, expected: tuple[int, int]
) -> None:
    start, end = validation.window_for(T0 + after, interval, minutes)
    base = int(T0.timestamp())
    assert (start - base, end - base) == expected


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from([60, 300, 900, 3600]),
    st.integers(1, 120),
)
def test_every_window_is_whole_intervals_from_the_next_boundary(
    now: datetime, interval: int, minutes: int
) -> None:
    start, end = validation.window_for(now, interval, minutes)
    assert start % interval == 0
    assert end % interval == 0
    assert 0 <= start - now.timestamp() < interval
    assert minutes * 60 <= end - start < minutes * 60 + interval


@pytest.mark.parametrize(
    ("directions", "expected"),
    [
        (
            {"down": "southbound", "up": "northbound", "right": "right", "left": "left"},
            ["southbound", "northbound"],
        ),
        ({"down": "inbound", "up": "up", "right": "right", "left": "left"}, ["inbound", "up"]),
        ({"down": "down", "up": "up", "right": "right", "left": "west"}, ["west", "right"]),
        (
            {"down": "down", "up": "up", "right": "right", "left": "left"},
            ["down", "up", "left", "right"],
        ),
        ({"down": "s", "up": "n", "right": "e", "left": "w"}, ["s", "n", "w", "e"]),
    ],
)
def test_a_line_offers_the_directions_of_its_axis(
    directions: dict[str, str], expected: list[str]
) -> None:
    assert validation.tally_directions(directions) == expected


def test_a_session_opens_at_the_next_boundary(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings, interval_seconds=300)
    editor = sign_in(app, "editor")
    before = datetime.now(UTC)
    response = client.post(
        f"/api/v1/cameras/{reg.camera}/validations", json={"minutes": 7}, headers=editor.headers
    )
    assert response.status_code == 201, response.text
    opened = response.json()
    starts, ends = (datetime.fromisoformat(opened[k]) for k in ("starts_at", "ends_at"))
    assert starts.timestamp() % 300 == 0
    assert before <= starts < before + timedelta(seconds=301)
    assert ends - starts == timedelta(minutes=10)
    assert opened["status"] == "open"
    assert opened["created_by"] == editor.email
    assert opened["lines"] == [{"line": "main", "directions": ["southbound", "northbound"]}]
    assert opened["classes"] == list(VEHICLE_CLASSES)
    assert (opened["manual"], opened["result"], opened["accuracy"]) == ({}, None, None)
    (event,) = [e for e in events_for(app, reg.camera) if e.action == "validation.create"]
    assert event.details["session"] == opened["id"]
    default = client.post(f"/api/v1/cameras/{reg.camera}/validations", headers=editor.headers)
    assert default.status_code == 201, default.text
    length = datetime.fromisoformat(default.json()["ends_at"]) - datetime.fromisoformat(
        default.json()["starts_at"]
    )
    assert length == timedelta(minutes=15)


@pytest.mark.parametrize(
    "body", [{"minutes": 0}, {"minutes": 121}, {"minutes": "5"}, {"minutes": 5, "x": 1}]
)
def test_a_window_outside_1_to_120_minutes_is_refused(
    client: TestClient, app: FastAPI, body: dict[str, Any]
) -> None:
    reg = register(app.state.settings)
    url = f"/api/v1/cameras/{reg.camera}/validations"
    response = client.post(url, json=body, headers=admin_token_headers(app))
    assert response.status_code == 422, response.text
    assert count_rows(app, ValidationSession, ValidationSession.camera_id == reg.camera) == 0


@dataclass(frozen=True)
class Comparison:
    """Reports in the window (minute, counts, coverage), the tally, and what must come out."""

    name: str
    reports: list[tuple[int, dict[tuple[str, str, str], int], float]]
    manual: dict[tuple[str, str, str], int]
    automatic_total: int
    coverage: float
    complete: bool
    accuracy: float | None
    rows: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    """Non-zero rows as (manual, automatic); every other row of the sheet reads (0, 0)."""


COMPARISONS = [
    Comparison(
        "the camera agrees",
        [(m, {NC: 2, ST: 1}, 1.0) for m in range(3)],
        {NC: 6, ST: 3},
        9,
        1.0,
        True,
        1.0,
        {NC: (6, 6), ST: (3, 3)},
    ),
    Comparison(
        "the camera counts more",
        [(m, {NC: 4}, 1.0) for m in range(3)],
        {NC: 10},
        12,
        1.0,
        True,
        0.8,
        {NC: (10, 12)},
    ),
    Comparison(
        "errors per class cancel in the total, not in the absolute error",
        [(m, {NC: 3, NB: 1}, 1.0) for m in range(3)],
        {NC: 9, NB: 2, SC: 1},
        12,
        1.0,
        True,
        1.0,
        {NC: (9, 9), NB: (2, 3), SC: (1, 0)},
    ),
    Comparison(
        "the camera counts more than twice the tally",
        [(m, {NC: 3}, 1.0) for m in range(3)],
        {NC: 2},
        9,
        1.0,
        True,
        0.0,  # never negative
        {NC: (2, 9)},
    ),
    Comparison(
        "a report is missing",
        [(0, {NC: 5}, 1.0), (2, {NC: 5}, 1.0)],
        {NC: 15},
        10,
        2 / 3,
        False,
        1 - 5 / 15,
        {NC: (15, 10)},
    ),
    Comparison(
        "a stalled stream: every report is in but the window was not all watched",
        [(0, {NC: 2}, 1.0), (1, {NC: 2}, 0.5), (2, {NC: 2}, 1.0)],
        {NC: 6},
        6,
        2.5 / 3,
        False,
        1.0,
        {NC: (6, 6)},
    ),
    Comparison(
        "nothing counted by hand",
        [(m, {NC: 2}, 1.0) for m in range(3)],
        {},
        6,
        1.0,
        True,
        None,
        {NC: (0, 6)},
    ),
]


def finish(client: TestClient, session_id: int, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(f"/api/v1/validations/{session_id}/finish", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("case", COMPARISONS, ids=[c.name for c in COMPARISONS])
def test_the_tally_is_compared_with_the_stored_reports_of_its_window(
    client: TestClient, app: FastAPI, case: Comparison
) -> None:
    reg = register(app.state.settings)
    session_id = open_at(app, reg, T0 + timedelta(seconds=10))
    outside = [
        make_report(reg.camera, WINDOW_START - timedelta(minutes=1), {NC: 50}),
        make_report(reg.camera, WINDOW_START + timedelta(minutes=3), {NC: 70}),
    ]
    post(client, reg, [*outside, *(in_window(reg, m, c, cov) for m, c, cov in case.reports)])
    editor = sign_in(app, "editor").headers
    tally = {key(k): n for k, n in case.manual.items()}
    saved = client.put(
        f"/api/v1/validations/{session_id}/tally", json={"manual": tally}, headers=editor
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["result"] is None, "no comparison while the tally is open"
    finished = finish(client, session_id, editor)
    viewer = sign_in(app, "viewer").headers
    read = client.get(f"/api/v1/validations/{session_id}", headers=viewer).json()
    assert read == finished
    result = read["result"]
    assert read["status"] == "finished"
    assert (result["manual_total"], result["automatic_total"]) == (
        sum(case.manual.values()),
        case.automatic_total,
    )
    assert result["coverage"] == pytest.approx(case.coverage)
    assert result["complete"] is case.complete
    if case.accuracy is None:
        assert (read["accuracy"], result["absolute_error"]) == (None, None)
    else:
        assert read["accuracy"] == pytest.approx(case.accuracy)
        errors = sum(abs(m - a) for m, a in case.rows.values())
        assert result["absolute_error"] == pytest.approx(errors / sum(case.manual.values()))
    rows = {
        (r["line"], r["direction"], r["vehicle_class"]): (r["manual"], r["automatic"])
        for r in result["rows"]
    }
    sheet = {("main", d, c) for d in ("southbound", "northbound") for c in VEHICLE_CLASSES}
    assert set(rows) == sheet | set(case.rows)
    assert {k: v for k, v in rows.items() if v != (0, 0)} == case.rows


def stored(app: FastAPI, session_id: int) -> ValidationSession:
    with app.state.session_factory() as session:
        record = session.get(ValidationSession, session_id)
        assert record is not None
        return record


def test_a_late_report_completes_the_result_which_is_then_final(
    client: TestClient, app: FastAPI
) -> None:
    reg = register(app.state.settings)
    session_id = open_at(app, reg, T0 + timedelta(seconds=10))
    post(client, reg, [in_window(reg, 0, {NC: 5}), in_window(reg, 2, {NC: 5})])
    editor = sign_in(app, "editor").headers
    url = f"/api/v1/validations/{session_id}"
    client.put(f"{url}/tally", json={"manual": {key(NC): 15}}, headers=editor)
    early = finish(client, session_id, editor)
    assert (early["result"]["complete"], early["result"]["coverage"]) == (
        False,
        pytest.approx(2 / 3),
    )
    assert stored(app, session_id).result == early["result"]

    post(client, reg, [in_window(reg, 1, {NC: 5})])
    late = client.get(url, headers=editor).json()
    assert late["result"]["complete"] is True
    assert late["result"]["coverage"] == 1.0
    assert late["result"]["automatic_total"] == 15
    assert late["accuracy"] == 1.0
    record = stored(app, session_id)
    assert (record.result, record.accuracy) == (late["result"], 1.0)
    listed = client.get(f"/api/v1/cameras/{reg.camera}/validations", headers=editor).json()
    assert listed == [late]


def writes_during(app: FastAPI, action: Callable[[], Any]) -> list[str]:
    """The INSERT, UPDATE and DELETE statements the database saw while `action` ran."""
    engine = app.state.session_factory.kw["bind"]
    writes: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return writes


@pytest.mark.parametrize("complete", [True, False], ids=["final", "still-open"])
def test_reading_a_result_writes_nothing_until_it_changes(
    client: TestClient, app: FastAPI, complete: bool
) -> None:
    reg = register(app.state.settings)
    session_id = open_at(app, reg, T0 + timedelta(seconds=10))
    post(client, reg, [in_window(reg, m, {NC: 5}) for m in range(3 if complete else 2)])
    editor = sign_in(app, "editor").headers
    url = f"/api/v1/validations/{session_id}"
    client.put(f"{url}/tally", json={"manual": {key(NC): 15}}, headers=editor)
    finished = finish(client, session_id, editor)
    assert finished["result"]["complete"] is complete
    for _ in range(2):
        reads = writes_during(app, lambda: client.get(url, headers=editor))
        assert not any("validation_sessions" in w for w in reads), reads
    if not complete:
        post(client, reg, [in_window(reg, 2, {NC: 5})])
        late = writes_during(app, lambda: client.get(url, headers=editor))
        assert any("validation_sessions" in w for w in late), "the late report is kept once"
        assert stored(app, session_id).result == client.get(url, headers=editor).json()["result"]
        again = writes_during(app, lambda: client.get(url, headers=editor))
        assert not any("validation_sessions" in w for w in again), again


def test_the_sheet_is_the_one_the_session_opened_with(
    client: TestClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    """A configuration saved while the person tallies (the line renamed) changes neither what
    they may tally nor what is compared."""
    reg = register(app.state.settings)
    session_id = open_at(app, reg, T0 + timedelta(seconds=10))
    renamed = {
        "lines": [{"name": "east", "points": [[0.1, 0.5], [0.9, 0.5]]}],
        "interval_seconds": 60,
    }
    saved = client.put(
        f"/api/v1/cameras/{reg.camera}/config", json={"setup": renamed}, headers=admin_headers
    )
    assert saved.status_code == 201, saved.text
    post(client, reg, [in_window(reg, m, {NC: 2}) for m in range(3)])
    editor = sign_in(app, "editor").headers
    url = f"/api/v1/validations/{session_id}"
    tally = client.put(f"{url}/tally", json={"manual": {key(NC): 6}}, headers=editor)
    assert tally.status_code == 200, tally.text
    assert tally.json()["lines"] == [{"line": "main", "directions": ["southbound", "northbound"]}]
    result = finish(client, session_id, editor)["result"]
    assert (result["manual_total"], result["automatic_total"], result["complete"]) == (6, 6, True)
    assert {r["line"] for r in result["rows"]} == {"main"}
    opened = client.post(f"/api/v1/cameras/{reg.camera}/validations", headers=editor).json()
    assert [x["line"] for x in opened["lines"]] == ["east"], "a new session has the new sheet"


def test_the_camera_total_counts_only_what_the_sheet_asks_for(
    client: TestClient, app: FastAPI
) -> None:
    """The sheet asks for cars only: buses the camera also counted show as their own rows but
    are no part of the camera's total (the person was never asked to count them)."""
    reg = register(app.state.settings)
    set_classes(app, reg, ["car"])
    session_id = open_at(app, reg, T0 + timedelta(seconds=10))
    post(client, reg, [in_window(reg, m, {NC: 2, NB: 4}) for m in range(3)])
    editor = sign_in(app, "editor").headers
    url = f"/api/v1/validations/{session_id}"
    client.put(f"{url}/tally", json={"manual": {key(NC): 6}}, headers=editor)
    finished = finish(client, session_id, editor)
    result = finished["result"]
    assert (result["manual_total"], result["automatic_total"]) == (6, 6)
    assert (finished["accuracy"], result["absolute_error"]) == (1.0, 0.0)
    rows = {(r["line"], r["direction"], r["vehicle_class"]): r["automatic"] for r in result["rows"]}
    assert rows[NB] == 12, "shown, not totalled"


def test_finishing_before_the_window_ends_is_refused(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    editor = sign_in(app, "editor").headers
    opened = client.post(f"/api/v1/cameras/{reg.camera}/validations", headers=editor).json()
    response = client.post(f"/api/v1/validations/{opened['id']}/finish", headers=editor)
    assert response.status_code == 409
    assert "finish it after that, or cancel it" in response.json()["detail"]
    assert stored(app, opened["id"]).status == "open"


def set_classes(app: FastAPI, reg: Registered, classes: list[str]) -> None:
    """A stored set-up that counts only `classes` (as a saved configuration would)."""
    setup = CameraSetup.model_validate(
        {
            "lines": [
                {
                    "name": "main",
                    "points": [[0.1, 0.5], [0.9, 0.5]],
                    "direction_names": {"down": "southbound", "up": "northbound"},
                }
            ],
            "classes": classes,
        }
    )
    with session_scope(app.state.session_factory) as session:
        session.add(
            CameraConfig(
                camera_id=reg.camera,
                version=2,
                setup=setup.model_dump(mode="json"),
                created_at=T0,
                created_by="cli",
            )
        )


BAD_TALLIES: list[dict[str, Any]] = [
    {"manual": {"main/left/car": 1}},  # the line lies across down/up
    {"manual": {"side/northbound/car": 1}},
    {"manual": {"main/northbound/tram": 1}},
    {"manual": {"main/northbound/bus": 1}},  # the camera counts cars only
    {"manual": {"main/northbound": 1}},
    {"manual": {"main/northbound/car/x": 1}},
    {"manual": {"main/northbound/car": -1}},
    {"manual": {"main/northbound/car": 100_001}},
    {"manual": {"main/northbound/car": "5"}},
    {"manual": {"main/northbound/car": True}},
    {"manual": {"main/northbound/car": 1.5}},
    {"manual": {"main/northbound/car": 1}, "extra": 1},
    {},
]


@pytest.mark.parametrize("body", BAD_TALLIES)
def test_a_bad_tally_is_refused_and_the_stored_one_kept(
    client: TestClient, app: FastAPI, body: dict[str, Any]
) -> None:
    reg = register(app.state.settings)
    set_classes(app, reg, ["car"])
    session_id = open_at(app, reg, T0)
    editor = sign_in(app, "editor").headers
    url = f"/api/v1/validations/{session_id}/tally"
    good = {"main/northbound/car": 100_000, "main/southbound/car": 0}
    first = client.put(url, json={"manual": good}, headers=editor)
    assert first.status_code == 200, first.text
    assert first.json()["classes"] == ["car"]
    response = client.put(url, json=body, headers=editor)
    assert response.status_code == 422, response.text
    assert stored(app, session_id).manual == good


def test_a_tally_replaces_the_whole_stored_one_and_each_change_is_audited(
    client: TestClient, app: FastAPI
) -> None:
    """A write like any other: who changed the tally and to what total; a resend of the same
    tally (the page sends it after every tap) changes nothing and adds no event."""
    reg = register(app.state.settings)
    session_id = open_at(app, reg, T0)
    editor = sign_in(app, "editor")
    url = f"/api/v1/validations/{session_id}/tally"
    for manual in ({key(NC): 1, key(ST): 2}, {key(ST): 3}, {key(ST): 3}):
        response = client.put(url, json={"manual": manual}, headers=editor.headers)
        assert response.status_code == 200, response.text
        assert response.json()["manual"] == manual
    assert stored(app, session_id).manual == {key(ST): 3}
    tallies = [e for e in events_for(app, reg.camera) if e.action == "validation.tally"]
    assert [(e.actor, e.details) for e in tallies] == [
        (editor.email, {"session": session_id, "keys": 2, "manual_total": 3}),
        (editor.email, {"session": session_id, "keys": 1, "manual_total": 3}),
    ]


# action -> whether it is allowed after: open, finished, cancelled
TRANSITIONS: dict[str, Callable[[TestClient, int, dict[str, str]], Any]] = {
    "tally": lambda c, i, h: c.put(
        f"/api/v1/validations/{i}/tally", json={"manual": {key(NC): 1}}, headers=h
    ),
    "finish": lambda c, i, h: c.post(f"/api/v1/validations/{i}/finish", headers=h),
    "cancel": lambda c, i, h: c.post(f"/api/v1/validations/{i}/cancel", headers=h),
}


@pytest.mark.parametrize("closed_by", ["finish", "cancel"])
@pytest.mark.parametrize("then", list(TRANSITIONS))
def test_a_closed_session_is_409_for_every_change(
    client: TestClient, app: FastAPI, closed_by: str, then: str
) -> None:
    reg = register(app.state.settings)
    session_id = open_at(app, reg, T0)
    editor = sign_in(app, "editor").headers
    closed = TRANSITIONS[closed_by](client, session_id, editor)
    assert closed.status_code == 200, closed.text
    status = "finished" if closed_by == "finish" else "cancelled"
    assert closed.json()["status"] == status
    assert (closed.json()["result"] is None) == (closed_by == "cancel")
    before = stored(app, session_id)
    events = count_rows(app, AuditEvent)
    response = TRANSITIONS[then](client, session_id, editor)
    assert response.status_code == 409, response.text
    assert status in response.json()["detail"]
    after = stored(app, session_id)
    assert (after.status, after.manual, after.result) == (
        before.status,
        before.manual,
        before.result,
    )
    assert count_rows(app, AuditEvent) == events
    actions = [e.action for e in events_for(app, reg.camera) if e.action.startswith("validation.")]
    assert actions == ["validation.create", f"validation.{closed_by}"]


def test_sessions_are_listed_newest_first(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    ids = [open_at(app, reg, T0 + timedelta(hours=n)) for n in range(3)]
    viewer = sign_in(app, "viewer").headers
    url = f"/api/v1/cameras/{reg.camera}/validations"
    assert [s["id"] for s in client.get(url, headers=viewer).json()] == ids[::-1]
    assert [s["id"] for s in client.get(url, params={"limit": 2}, headers=viewer).json()] == ids[
        :0:-1
    ]
    assert client.get(url, params={"limit": 0}, headers=viewer).status_code == 422


PRINCIPALS = [
    "anonymous",
    "viewer",
    "viewer of another site",
    "editor",
    "editor of the site",
    "editor of another site",
    "admin token",
]
# endpoint -> (role needed, status when allowed, status for another site's account)
ENDPOINTS: dict[str, tuple[str, int, int]] = {
    "create": ("editor", 201, 404),
    "tally": ("editor", 200, 404),
    "cancel": ("editor", 200, 404),
    "get": ("viewer", 200, 404),
    "list": ("viewer", 200, 404),
}


def request(
    client: TestClient, endpoint: str, reg: Registered, session_id: int, headers: dict[str, str]
) -> Any:
    if endpoint == "create":
        return client.post(f"/api/v1/cameras/{reg.camera}/validations", headers=headers)
    if endpoint == "list":
        return client.get(f"/api/v1/cameras/{reg.camera}/validations", headers=headers)
    if endpoint == "get":
        return client.get(f"/api/v1/validations/{session_id}", headers=headers)
    return TRANSITIONS[endpoint](client, session_id, headers)


def expected_status(endpoint: str, who: str) -> int:
    role, ok, foreign = ENDPOINTS[endpoint]
    if who == "anonymous":
        return 401
    if who.startswith("viewer") and role == "editor":
        return 403
    return foreign if who.endswith("another site") else ok


@pytest.mark.parametrize("who", PRINCIPALS)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_roles_and_sites(client: TestClient, app: FastAPI, endpoint: str, who: str) -> None:
    reg = register(app.state.settings, public=False)
    session_id = open_at(app, reg, T0)
    other = register(app.state.settings).site
    role = "viewer" if who.startswith("viewer") else "editor"
    headers = {
        "anonymous": lambda: {},
        "admin token": lambda: admin_token_headers(app),
        "editor of the site": lambda: sign_in(app, "editor", [reg.site]).headers,
    }.get(who, lambda: sign_in(app, role, [other] if "another" in who else None).headers)()
    events = count_rows(app, AuditEvent)
    response = request(client, endpoint, reg, session_id, headers)
    status = expected_status(endpoint, who)
    assert response.status_code == status, response.text
    audited = count_rows(app, AuditEvent) - events
    assert audited == (1 if status < 300 and endpoint in ("create", "cancel", "tally") else 0)
    if status >= 400:
        assert stored(app, session_id).status == "open"
        assert stored(app, session_id).manual == {}
    if status == 404:
        nowhere = {
            "get": "/api/v1/validations/2147483647",
            "list": "/api/v1/cameras/cam-nowhere/validations",
            "create": "/api/v1/cameras/cam-nowhere/validations",
        }
        missing = client.get(nowhere.get(endpoint, nowhere["get"]), headers=headers)
        assert missing.status_code == 404
        assert response.json()["detail"] == missing.json()["detail"].replace(
            "cam-nowhere", reg.camera
        ).replace("2147483647", str(session_id))


@pytest.mark.parametrize(
    ("resolution", "points", "names", "expected"),
    [
        ((1280, 720), ((100, 400), (1200, 420)), {"down": "in"}, ["in", "up"]),
        ((1280, 720), ((600, 100), (620, 700)), {}, ["left", "right"]),
        (None, ((0.1, 0.5), (0.9, 0.5)), {}, ["down", "up"]),  # horizontal on any frame
        (None, ((0.3, 0.2), (0.6, 0.6)), {"left": "east"}, ["east", "right"]),  # named axis
        (None, ((0.3, 0.2), (0.6, 0.6)), {}, ["down", "up", "left", "right"]),  # could be either
    ],
)
def test_a_stored_setup_tells_each_line_its_two_directions(
    resolution: tuple[int, int] | None,
    points: tuple[tuple[float, float], tuple[float, float]],
    names: dict[str, str],
    expected: list[str],
) -> None:
    """The tally offers what the worker can report: its geometry decides the axis, and only
    relative coordinates whose axis depends on the frame's shape fall back to both."""
    line = SetupLine(name="main", points=points, direction_names=names)
    setup = CameraSetup(reference_resolution=resolution, lines=[line])
    assert setup_directions(line, setup) == expected
