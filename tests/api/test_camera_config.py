"""Remote configuration: versioned camera set-ups, who may change them, and the CLI.

On SQLite and PostgreSQL: the role matrix of the set-up endpoints, version history with its
audit trail, stale and simultaneous saves (409), located 422s for bad geometry, calibration
fitting in metres and latitude/longitude, the device's pull, and `python -m api
camera-config` / `add-camera --config`.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from accounts_testkit import admin_token_headers, count_rows, events_for, sign_in
from api_testkit import T0, TEST_SECRET, Registered, make_report, register
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from api import cli
from api.db import session_scope
from api.models import AuditEvent, Camera, CameraConfig
from api.services import camera_config
from api.services.access import ROLE_RANK, Role
from contract.camera import CameraSetup
from contract.planning import PcuFactors
from tests.support.reports import streaming_heartbeat

REPO = Path(__file__).resolve().parents[2]
SETUP: dict[str, Any] = {
    "reference_resolution": [1280, 720],
    "lines": [
        {
            "name": "main",
            "points": [[0, 400], [1280, 400]],
            "direction_names": {"down": "southbound", "up": "northbound"},
        }
    ],
    "zones": [
        {
            "name": "approach",
            "polygon": [[200, 300], [1000, 300], [1100, 600], [100, 600]],
            "lanes": 2,
            "length_m": 40.0,
        }
    ],
    "interval_seconds": 60,
}
IMAGE = [[100, 600], [1180, 600], [900, 300], [380, 300]]
GROUND = [[0, 0], [7, 0], [7, 30], [0, 30]]


def setup_with(**changes: Any) -> dict[str, Any]:
    return SETUP | changes


def config_url(camera: str, tail: str = "") -> str:
    return f"/api/v1/cameras/{camera}/config{tail}"


def seed(app: FastAPI, camera: str, setup: dict[str, Any] = SETUP, note: str = "") -> int:
    """A stored version through the service the endpoint and the CLI use."""
    with session_scope(app.state.session_factory) as session:
        saved = camera_config.save_config(
            session, camera, CameraSetup.model_validate(setup), note=note
        )
        return saved.version


def versions_of(app: FastAPI, camera: str) -> list[int]:
    """Stored versions, newest first, read straight from the table."""
    statement = (
        select(CameraConfig.version)
        .where(CameraConfig.camera_id == camera)
        .order_by(CameraConfig.version.desc())
    )
    with app.state.session_factory() as session:
        return list(session.scalars(statement))


# --- who may do what ------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    url: Callable[[str], str]
    body: dict[str, Any] | None
    role: Role
    ok: int


ENDPOINTS = [
    Endpoint("get config", "GET", config_url, None, "viewer", 200),
    Endpoint("list versions", "GET", lambda c: config_url(c, "/versions"), None, "viewer", 200),
    Endpoint("get version", "GET", lambda c: config_url(c, "/versions/2"), None, "viewer", 200),
    Endpoint("save", "PUT", config_url, {"setup": SETUP, "base_version": 2}, "editor", 201),
    Endpoint(
        "fit calibration",
        "POST",
        lambda c: f"/api/v1/cameras/{c}/calibration/fit",
        {"image_points": IMAGE, "ground_points_m": GROUND},
        "editor",
        200,
    ),
]
PRINCIPALS: dict[str, tuple[Role | None, str]] = {
    "anonymous": (None, ""),
    "viewer": ("viewer", "all"),
    "viewer of another site": ("viewer", "other"),
    "editor": ("editor", "all"),
    "editor of this site": ("editor", "this"),
    "editor of another site": ("editor", "other"),
    "admin (token)": ("admin", "all"),
}


def expected(endpoint: Endpoint, who: str) -> tuple[int, str]:
    role, sites = PRINCIPALS[who]
    if role is None:
        return 401, "sign in"
    if ROLE_RANK[role] < ROLE_RANK[endpoint.role]:
        return 403, f"needs the {endpoint.role} role"
    if sites == "other":  # another site's camera is as absent as one that does not exist
        return 404, "does not exist"
    return endpoint.ok, ""


def headers_for(app: FastAPI, who: str, reg: Registered, other_site: str) -> dict[str, str]:
    role, sites = PRINCIPALS[who]
    if role is None:
        return {}
    if who == "admin (token)":
        return admin_token_headers(app)
    restriction = {"all": None, "this": [reg.site], "other": [other_site]}[sites]
    return sign_in(app, role, restriction).headers


@pytest.fixture(scope="module")
def other_site(app: FastAPI) -> str:
    return register(app.state.settings).site


@pytest.mark.parametrize("who", list(PRINCIPALS))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_role_matrix(
    app: FastAPI, client: TestClient, other_site: str, endpoint: Endpoint, who: str
) -> None:
    reg = register(app.state.settings)
    seed(app, reg.camera)
    headers = headers_for(app, who, reg, other_site)
    events = count_rows(app, AuditEvent, AuditEvent.target == reg.camera)

    response = client.request(
        endpoint.method, endpoint.url(reg.camera), json=endpoint.body, headers=headers
    )

    status, message = expected(endpoint, who)
    assert response.status_code == status, response.text
    if message:
        assert message in response.json()["detail"]
    saved = endpoint.method == "PUT" and status < 400
    assert versions_of(app, reg.camera) == ([3, 2, 1] if saved else [2, 1])
    assert count_rows(app, AuditEvent, AuditEvent.target == reg.camera) == events + saved


# --- versions, history, registry ------------------------------------------------------------


def test_each_save_is_a_new_version_with_who_when_and_why(app: FastAPI, client: TestClient) -> None:
    reg = register(app.state.settings)
    editor = sign_in(app, "editor", [reg.site])
    assert client.get(config_url(reg.camera), headers=editor.headers).status_code == 404
    slower = setup_with(interval_seconds=300)
    renamed = slower | {"lines": [SETUP["lines"][0] | {"name": "east"}]}
    steps = [
        (None, slower, "five-minute intervals"),
        (2, renamed, "line renamed"),
        (3, renamed | {"zones": [], "classes": ["car", "bus"]}, "zone gone, cars and buses"),
    ]
    for base, setup, note in steps:
        body = {"setup": setup, "note": note, "base_version": base}
        response = client.put(config_url(reg.camera), json=body, headers=editor.headers)
        assert response.status_code == 201, response.text
    latest = response.json()
    assert (latest["version"], latest["note"], latest["created_by"]) == (
        4,
        steps[-1][2],
        editor.email,
    )
    assert latest["setup"] == CameraSetup.model_validate(steps[-1][1]).model_dump(mode="json")

    history = client.get(config_url(reg.camera, "/versions"), headers=editor.headers).json()
    assert [(v["version"], v["note"], v["created_by"]) for v in history] == [
        (4, steps[2][2], editor.email),
        (3, steps[1][2], editor.email),
        (2, steps[0][2], editor.email),
        (1, camera_config.REGISTERED_NOTE, editor.email),
    ]
    assert history[0]["created_at"] >= history[1]["created_at"] >= history[2]["created_at"]
    old = client.get(config_url(reg.camera, "/versions/2"), headers=editor.headers).json()
    assert old["setup"]["interval_seconds"] == 300
    assert old["setup"]["lines"][0]["name"] == "main"
    missing = client.get(config_url(reg.camera, "/versions/9"), headers=editor.headers)
    assert missing.status_code == 404
    assert "no configuration version 9" in missing.json()["detail"]

    changes = [e.details for e in events_for(app, reg.camera) if e.action == "camera.config"]
    assert [c["version"] for c in changes] == [1, 2, 3, 4]
    assert [c["changed"] for c in changes[1:]] == [
        {  # the first saved version: everything is new (the registration had no geometry)
            "reference_resolution": {"from": None, "to": [1280, 720]},
            "lines": {"added": ["main"]},
            "zones": {"added": ["approach"]},
            "interval_seconds": {"from": None, "to": 300},
            "pcu": {"from": None, "to": PcuFactors().model_dump(mode="json")},
        },
        {"lines": {"added": ["east"], "removed": ["main"]}},
        {"zones": {"removed": ["approach"]}, "classes": {"from": None, "to": ["car", "bus"]}},
    ]
    assert [e.actor for e in events_for(app, reg.camera)][-4:] == [editor.email] * 4


def test_saving_updates_the_registry_that_ingest_and_the_planner_read(
    app: FastAPI, client: TestClient, admin_headers: dict[str, str]
) -> None:
    reg = register(app.state.settings)
    east = {"name": "east", "points": [[0, 100], [1280, 100]], "direction_names": {"up": "in"}}
    body = {"setup": setup_with(interval_seconds=300, lines=[east], zones=[])}
    assert client.put(config_url(reg.camera), json=body, headers=admin_headers).status_code == 201

    (camera,) = client.get(f"/api/v1/sites/{reg.site}", headers=admin_headers).json()["cameras"]
    assert (camera["interval_seconds"], camera["config_version"], camera["zones"]) == (300, 2, [])
    assert camera["lines"] == [
        {
            "name": "east",
            "directions": [
                {"geometric": g, "label": "in" if g == "up" else g}
                for g in ("down", "up", "right", "left")
            ],
        }
    ]
    assert camera["name"] == reg.camera, "the display name stays"


def test_a_versioned_camera_changes_its_setup_only_through_a_new_version(
    app: FastAPI, client: TestClient, admin_headers: dict[str, str]
) -> None:
    """The registry edit of PUT /admin/cameras would change what ingest accepts but not what
    the worker counts: once versions exist it may rename and move the camera, nothing else."""
    reg = register(app.state.settings)
    seed(app, reg.camera)
    registered = {
        "id": reg.camera,
        "site_id": reg.site,
        "name": "Renamed",
        "interval_seconds": 60,
        "config_version": 2,
        "lines": [{"name": "main", "direction_names": {"down": "southbound", "up": "northbound"}}],
        "zones": [{"name": "approach", "lanes": 2, "length_m": 40.0}],
    }
    url = f"/api/v1/admin/cameras/{reg.camera}"
    assert client.put(url, json=registered, headers=admin_headers).status_code == 200
    for change in (
        {"interval_seconds": 300},
        {"lines": [{"name": "other"}]},
        {"zones": []},
        {"config_version": 7},
    ):
        refused = client.put(url, json=registered | change, headers=admin_headers)
        assert refused.status_code == 409, change
        assert "/config" in refused.json()["detail"]
    site = client.get(f"/api/v1/sites/{reg.site}", headers=admin_headers).json()
    (camera,) = site["cameras"]
    assert (camera["name"], camera["interval_seconds"], camera["config_version"]) == (
        "Renamed",
        60,
        2,
    )
    assert versions_of(app, reg.camera) == [2, 1]


def test_a_save_from_a_stale_version_is_409_and_stores_nothing(
    app: FastAPI, client: TestClient
) -> None:
    reg = register(app.state.settings)
    seed(app, reg.camera)
    first, second = sign_in(app, "editor"), sign_in(app, "editor")
    loaded = client.get(config_url(reg.camera), headers=first.headers).json()["version"]
    mine = {"setup": setup_with(interval_seconds=120), "base_version": loaded}
    theirs = {"setup": setup_with(interval_seconds=30), "base_version": loaded}
    assert client.put(config_url(reg.camera), json=mine, headers=first.headers).status_code == 201

    response = client.put(config_url(reg.camera), json=theirs, headers=second.headers)

    assert response.status_code == 409, response.text
    assert "at configuration version 3 now, not 2" in response.json()["detail"]
    assert versions_of(app, reg.camera) == [3, 2, 1]
    assert (
        client.get(config_url(reg.camera), headers=second.headers).json()["setup"][
            "interval_seconds"
        ]
        == 120
    )


def test_two_saves_at_the_same_moment_make_one_version_and_a_409(
    app: FastAPI, client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Both read version 2 as the newest; the other commits version 3 between this request's
    check and its insert. The insert's unique violation is a 409, not a 500."""
    reg = register(app.state.settings)
    seed(app, reg.camera)
    engine = app.state.session_factory.kw["bind"]
    raced: list[str] = []

    def concurrent_save(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO camera_configs") and not raced:
            raced.append(statement)
            seed(app, reg.camera, setup_with(interval_seconds=30), note="the other one")

    event.listen(engine, "before_cursor_execute", concurrent_save)
    try:
        body = {"setup": setup_with(interval_seconds=120), "base_version": 2}
        response = client.put(config_url(reg.camera), json=body, headers=admin_headers)
    finally:
        event.remove(engine, "before_cursor_execute", concurrent_save)
    assert raced, "the race was not staged"
    assert response.status_code == 409, response.text
    assert "at the same moment" in response.json()["detail"]
    latest = client.get(config_url(reg.camera), headers=admin_headers).json()
    assert (latest["version"], latest["note"]) == (3, "the other one")
    assert versions_of(app, reg.camera) == [3, 2, 1]


# --- located errors -------------------------------------------------------------------------

ZERO_LENGTH = {"name": "flat", "points": [[10, 10], [10, 10]]}
ONE_LABEL = {
    "name": "twin",
    "points": [[0, 0], [100, 0]],
    "direction_names": {"down": "in", "up": "in"},
}
BOWTIE = {"name": "bow", "polygon": [[0, 0], [200, 100], [200, 0], [0, 150]]}
COLLINEAR = {
    "image_points": [[0, 0], [100, 100], [200, 200], [300, 300]],
    "ground_points_m": GROUND,
}
OUTSIDE = {"name": "far", "points": [[0, 10], [1300, 10]]}
SETUP_AT = ("body", "setup")

BAD_SETUPS: dict[str, tuple[dict[str, Any], list[tuple[tuple[Any, ...], str]]]] = {
    "zero-length line": (
        setup_with(lines=[ZERO_LENGTH]),
        [((*SETUP_AT, "lines", 0), "line 'flat': its two points are the same")],
    ),
    "two directions with one label": (
        setup_with(lines=[ONE_LABEL]),
        [((*SETUP_AT, "lines", 0), "line 'twin': two directions are renamed to the same label")],
    ),
    "self-intersecting zone": (
        setup_with(zones=[BOWTIE]),
        [((*SETUP_AT, "zones", 0), "zone 'bow': its polygon is not simple (Self-intersection")],
    ),
    "degenerate calibration": (
        setup_with(calibration=COLLINEAR),
        [((*SETUP_AT, "calibration"), "calibration: the image points are degenerate")],
    ),
    "point outside the reference resolution": (
        setup_with(lines=[OUTSIDE]),
        [(SETUP_AT, "line 'far': point (1300, 10) is outside the reference resolution")],
    ),
    "every item problem in one response": (
        setup_with(lines=[ZERO_LENGTH, ONE_LABEL], zones=[BOWTIE], calibration=COLLINEAR),
        [
            ((*SETUP_AT, "lines", 0), "its two points are the same"),
            ((*SETUP_AT, "lines", 1), "renamed to the same label"),
            ((*SETUP_AT, "zones", 0), "not simple"),
            ((*SETUP_AT, "calibration"), "degenerate"),
        ],
    ),
    "every camera-wide problem in one response": (
        setup_with(
            lines=[OUTSIDE], zones=[SETUP["zones"][0], SETUP["zones"][0]], interval_seconds=45
        ),
        [
            (SETUP_AT, "line 'far': point (1300, 10) is outside the reference resolution"),
            (SETUP_AT, "zone names must be unique (approach repeated)"),
            (SETUP_AT, "interval_seconds must be one of"),
        ],
    ),
}


@pytest.mark.parametrize(("setup", "problems"), BAD_SETUPS.values(), ids=BAD_SETUPS.keys())
def test_a_bad_setup_is_422_with_every_problem_located_and_nothing_stored(
    app: FastAPI,
    client: TestClient,
    admin_headers: dict[str, str],
    setup: dict[str, Any],
    problems: list[tuple[tuple[Any, ...], str]],
) -> None:
    reg = register(app.state.settings)
    seed(app, reg.camera)

    response = client.put(config_url(reg.camera), json={"setup": setup}, headers=admin_headers)

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    for at, message in problems:
        assert any(tuple(e["loc"]) == at and message in e["msg"] for e in errors), (at, errors)
    assert len(errors) == len({at for at, _ in problems})
    assert versions_of(app, reg.camera) == [2, 1]


# --- calibration fitting --------------------------------------------------------------------

LAT0, LON0 = 51.5, -0.1
LATLON = [
    [LAT0, LON0],
    [LAT0, LON0 + 0.0001],
    [LAT0 + 0.0003, LON0 + 0.0001],
    [LAT0 + 0.0003, LON0],
]


def haversine_m(a: list[float], b: list[float]) -> float:
    """Great-circle distance: an independent check of the local-plane conversion."""
    (lat1, lon1), (lat2, lon2) = (map(math.radians, p) for p in (a, b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def fits_exactly(fit: dict[str, Any]) -> None:
    assert fit["reprojection_error_m"] < 1e-6
    assert fit["calibration"]["ground_points_m"] == GROUND


def shows_the_disagreement(fit: dict[str, Any]) -> None:
    assert 0.05 < fit["reprojection_error_m"] < 5


def in_local_metres(fit: dict[str, Any]) -> None:
    ground = fit["calibration"]["ground_points_m"]
    for i, j in ((0, 1), (1, 2), (0, 2)):
        assert math.dist(ground[i], ground[j]) == pytest.approx(
            haversine_m(LATLON[i], LATLON[j]), abs=0.01
        )
    assert ground[1][0] > ground[0][0], "east is +x"
    assert ground[2][1] > ground[1][1], "north is +y"
    assert fit["reprojection_error_m"] < 1e-6


FITS: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], None]]] = {
    "four points in metres fit exactly": (
        {"image_points": IMAGE, "ground_points_m": GROUND},
        fits_exactly,
    ),
    "a fifth point that disagrees shows as error": (
        {"image_points": [*IMAGE, [640, 450]], "ground_points_m": [*GROUND, [5, 10]]},
        shows_the_disagreement,
    ),
    "latitude and longitude become metres": (
        {"image_points": IMAGE, "ground_points_latlon": LATLON},
        in_local_metres,
    ),
}


@pytest.mark.parametrize(("body", "check"), FITS.values(), ids=FITS.keys())
def test_calibration_fit(
    app: FastAPI,
    client: TestClient,
    admin_headers: dict[str, str],
    body: dict[str, Any],
    check: Callable[[dict[str, Any]], None],
) -> None:
    reg = register(app.state.settings)
    url = f"/api/v1/cameras/{reg.camera}/calibration/fit"
    response = client.post(url, json=body, headers=admin_headers)
    assert response.status_code == 200, response.text
    check(response.json())
    assert response.json()["calibration"]["image_points"] == body["image_points"]
    assert versions_of(app, reg.camera) == [], "fitting stores nothing"


BAD_FITS: dict[str, tuple[dict[str, Any], str]] = {
    "collinear ground points": (
        {"image_points": IMAGE, "ground_points_m": [[0, 0], [1, 1], [2, 2], [3, 3]]},
        "the ground points are degenerate",
    ),
    "a repeated image point": (
        {"image_points": [IMAGE[0], *IMAGE[:3]], "ground_points_m": GROUND},
        "two image points are the same",
    ),
    "more ground than image points": (
        {"image_points": IMAGE, "ground_points_m": [*GROUND, [3, 3]]},
        "4 image points but 5 ground points",
    ),
    "metres and lat/lon": (
        {"image_points": IMAGE, "ground_points_m": GROUND, "ground_points_latlon": LATLON},
        "exactly one",
    ),
    "no ground points": ({"image_points": IMAGE}, "exactly one"),
    "three points": (
        {"image_points": IMAGE[:3], "ground_points_m": GROUND[:3]},
        "at least 4 items",
    ),
    "latitude out of range": (
        {"image_points": IMAGE, "ground_points_latlon": [[91, 0], *LATLON[1:]]},
        "less than or equal to 90",
    ),
}


@pytest.mark.parametrize(("body", "reason"), BAD_FITS.values(), ids=BAD_FITS.keys())
def test_calibration_fit_refuses_points_that_fix_nothing(
    app: FastAPI,
    client: TestClient,
    admin_headers: dict[str, str],
    body: dict[str, Any],
    reason: str,
) -> None:
    reg = register(app.state.settings)
    url = f"/api/v1/cameras/{reg.camera}/calibration/fit"
    response = client.post(url, json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert reason in str(response.json()["detail"])


# --- what was registered stays the registration ---------------------------------------------

RENAMED = setup_with(lines=[SETUP["lines"][0] | {"name": "east"}], zones=[])
"""A first saved version that renames the registered line and drops the zone."""


def report_of(reg: Registered, minute: int, line: str, version: int | None) -> dict[str, Any]:
    made = make_report(reg.camera, T0 + timedelta(minutes=minute), {(line, "northbound", "car"): 3})
    return made.model_copy(update={"config_version": version}).model_dump(mode="json")


def test_reports_counted_before_the_first_version_are_still_accepted_after_it(
    app: FastAPI, client: TestClient, admin_headers: dict[str, str]
) -> None:
    """A camera registered without a set-up: its worker counts with its site file and reports
    no API version. The first save stores what was registered as version 1 (names only: the
    registry has no geometry) before the new set-up; a report still in flight, with no version
    or one the API never gave, is checked against that registration, not the new set-up."""
    reg = register(app.state.settings)
    counted = [report_of(reg, 0, "main", None)]
    assert client.post("/api/v1/reports", json={"reports": counted}, headers=reg.auth).is_success
    body = {"setup": RENAMED, "note": "line renamed"}
    saved = client.put(config_url(reg.camera), json=body, headers=admin_headers)
    assert saved.status_code == 201, saved.text
    assert saved.json()["version"] == 2
    history = client.get(config_url(reg.camera, "/versions"), headers=admin_headers).json()
    assert [(v["version"], v["note"]) for v in history] == [
        (2, "line renamed"),
        (1, camera_config.REGISTERED_NOTE),
    ]
    registered = client.get(config_url(reg.camera, "/versions/1"), headers=admin_headers).json()
    assert [x["name"] for x in registered["setup"]["lines"]] == ["main"]
    assert [z["name"] for z in registered["setup"]["zones"]] == ["approach"]
    assert registered["setup"]["interval_seconds"] == 60

    in_flight = [report_of(reg, 1, "main", None), report_of(reg, 2, "main", 7)]
    response = client.post("/api/v1/reports", json={"reports": in_flight}, headers=reg.auth)
    assert response.status_code == 200, response.text
    new = [report_of(reg, 3, "east", 2)]
    assert client.post("/api/v1/reports", json={"reports": new}, headers=reg.auth).is_success
    wrong = [report_of(reg, 4, "east", None)]
    refused = client.post("/api/v1/reports", json={"reports": wrong}, headers=reg.auth)
    assert refused.status_code == 422, "an unversioned report still names what was registered"
    assert versions_of(app, reg.camera) == [2, 1]


def test_the_first_version_of_a_site_file_camera_is_its_registration(
    app: FastAPI,
    client: TestClient,
    admin_headers: dict[str, str],
    tmp_path: Path,
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    """Registered from its site file: version 1 is the file's set-up with its geometry, and a
    report without a version is checked against it after an editor's save."""
    reg = register(app.state.settings)
    camera = f"file-{reg.site[5:]}"
    site_file = tmp_path / "site.yaml"
    site_file.write_text(SITE_FILE.format(version=7, site=reg.site, camera=camera, y=400))
    args = ("add-camera", "--config", str(site_file), "--camera-id", camera, "--site", reg.site)
    assert run_cli(*args)[2] == "configuration version 1\n"
    token = run_cli("issue-token", "--camera", camera)[1].strip()
    auth = {"Authorization": f"Bearer {token}"}
    saved = client.put(config_url(camera), json={"setup": RENAMED}, headers=admin_headers)
    assert saved.status_code == 201, saved.text
    assert saved.json()["version"] == 2
    device = Registered(site=reg.site, camera=camera, token=token, token_id="")
    late = [report_of(device, 0, "main", None)]
    response = client.post("/api/v1/reports", json={"reports": late}, headers=auth)
    assert response.status_code == 200, response.text
    assert versions_of(app, camera) == [2, 1]


def test_a_camera_without_a_stored_version_is_told_of_none(
    app: FastAPI, client: TestClient
) -> None:
    """The registry's `config_version` is the site file's revision, not a version the API
    stores: announcing it would send the worker after a configuration that does not exist."""
    reg = register(app.state.settings)
    with session_scope(app.state.session_factory) as session:
        found = session.get(Camera, reg.camera)
        assert found is not None
        found.config_version = 5
    beat = streaming_heartbeat(reg.camera, 0)
    answer = client.post("/api/v1/heartbeat", json=beat.model_dump(mode="json"), headers=reg.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["config_version"] == 0
    assert client.get("/api/v1/device/config", headers=reg.auth).status_code == 404
    seed(app, reg.camera)
    answer = client.post("/api/v1/heartbeat", json=beat.model_dump(mode="json"), headers=reg.auth)
    assert answer.json()["config_version"] == 2


# --- the device's side ----------------------------------------------------------------------


def test_the_device_pulls_its_own_newest_configuration(
    app: FastAPI, client: TestClient, admin_headers: dict[str, str]
) -> None:
    reg, other = register(app.state.settings), register(app.state.settings)
    missing = client.get("/api/v1/device/config", headers=reg.auth)
    assert missing.status_code == 404
    assert "has no configuration stored" in missing.json()["detail"]
    seed(app, reg.camera)
    seed(app, other.camera, setup_with(interval_seconds=900))
    seed(app, reg.camera, setup_with(interval_seconds=300))

    pulled = client.get("/api/v1/device/config", headers=reg.auth)

    assert pulled.status_code == 200, pulled.text
    body = pulled.json()
    assert (body["camera_id"], body["version"]) == (reg.camera, 3)
    assert body["setup"] == CameraSetup.model_validate(setup_with(interval_seconds=300)).model_dump(
        mode="json"
    )
    assert client.get("/api/v1/device/config", headers=other.auth).json()["version"] == 2
    assert client.get("/api/v1/device/config").status_code == 401
    assert client.get("/api/v1/device/config", headers=admin_headers).status_code == 401


# --- the command line -----------------------------------------------------------------------

SITE_FILE = """
version: 1
config_version: {version}
site: {site}
cameras:
  - id: {camera}
    source: rtsp://camuser:hunter2@10.20.30.40:554/stream1
    reference_resolution: [1280, 720]
    interval_seconds: 60
    lines:
      - name: main
        points: [[0, {y}], [1280, {y}]]
        direction_names: {{down: southbound, up: northbound}}
"""


@pytest.fixture
def run_cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """`python -m api ...` in this process, on the test database: (status, stdout, stderr)."""
    monkeypatch.setenv("TALLY_DATABASE_URL", database_url)
    monkeypatch.setenv("TALLY_ENVIRONMENT", "test")
    monkeypatch.setenv("TALLY_SECRET_KEY", TEST_SECRET)

    def run(*args: str) -> tuple[int, str, str]:
        status = cli.main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_registering_from_a_site_file_stores_its_setup_as_a_version(
    app: FastAPI, tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    site = register(app.state.settings).site
    camera = f"yaml-{site[5:]}"
    site_file = tmp_path / "site.yaml"

    def add_camera(version: int, y: int, *extra: str) -> tuple[int, str, str]:
        site_file.write_text(SITE_FILE.format(version=version, site=site, camera=camera, y=y))
        return run_cli(
            "add-camera", "--config", str(site_file), "--camera-id", camera, "--site", site, *extra
        )

    # the camera's own numbers from 1: the file's revision (4, 9) is not a version of it
    assert add_camera(4, 400) == (0, f"{camera}\n", "configuration version 1\n")
    assert add_camera(4, 400, "--replace")[2] == "configuration version 1\n", "unchanged: no new"
    assert add_camera(4, 500, "--replace")[2] == "configuration version 2\n", "moved: the next"
    assert add_camera(9, 300, "--replace")[2] == "configuration version 3\n", "the next again"
    assert versions_of(app, camera) == [3, 2, 1]
    with app.state.session_factory() as session:
        stored = session.get(CameraConfig, (camera, 3))
        registered = session.get(Camera, camera)
        assert stored is not None
        assert registered is not None
        assert stored.setup["lines"][0]["points"] == [[0, 300], [1280, 300]]
        assert "source" not in stored.setup
        assert "hunter2" not in json.dumps(stored.setup)
        assert (stored.created_by, stored.note) == ("cli", "registered from site.yaml (revision 9)")
        assert registered.config_version == 3


def test_camera_config_show_set_and_history(
    app: FastAPI, tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    reg = register(app.state.settings)
    assert run_cli("camera-config", "show", reg.camera)[0] == 1
    seed(app, reg.camera, note="first")

    status, shown, about = run_cli("camera-config", "show", reg.camera)
    assert status == 0
    assert json.loads(shown) == CameraSetup.model_validate(SETUP).model_dump(mode="json")
    assert about.startswith("2\t")
    assert about.rstrip().endswith("cli\tfirst")

    as_yaml = tmp_path / "setup.yaml"
    as_yaml.write_text(yaml.safe_dump(json.loads(shown) | {"interval_seconds": 300}))
    assert run_cli("camera-config", "set", reg.camera, str(as_yaml), "--note", "slower") == (
        0,
        f"{reg.camera}: configuration version 3\n",
        "",
    )
    as_json = tmp_path / "setup.json"
    as_json.write_text(shown)
    assert run_cli("camera-config", "set", reg.camera, str(as_json))[0] == 0

    status, history, _ = run_cli("camera-config", "history", reg.camera)
    rows = [line.split("\t") for line in history.splitlines()]
    assert rows[0] == ["version", "saved", "by", "note"]
    assert [(r[0], r[2], r[3]) for r in rows[1:]] == [
        ("4", "cli", ""),
        ("3", "cli", "slower"),
        ("2", "cli", "first"),
        ("1", "cli", camera_config.REGISTERED_NOTE),
    ]
    assert app_interval(app, reg.camera) == 60


def app_interval(app: FastAPI, camera: str) -> int:
    with app.state.session_factory() as session:
        found = session.get(Camera, camera)
        assert found is not None
        return found.interval_seconds


BAD_FILES = {
    "geometry": (
        yaml.safe_dump(setup_with(lines=[ZERO_LENGTH, ONE_LABEL], zones=[BOWTIE])),
        ["3 problem(s)", "  lines.0: ", "  lines.1: ", "  zones.0: "],
    ),
    "unknown key": (json.dumps(setup_with(colour="red")), ["  colour: Extra inputs"]),
    "not YAML": ("lines: [unclosed", ["not valid YAML"]),
}


@pytest.mark.parametrize(("text", "lines"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_camera_config_set_reports_each_problem_on_its_line_and_stores_nothing(
    app: FastAPI,
    tmp_path: Path,
    run_cli: Callable[..., tuple[int, str, str]],
    text: str,
    lines: list[str],
) -> None:
    reg = register(app.state.settings)
    seed(app, reg.camera)
    path = tmp_path / "bad.yaml"
    path.write_text(text)

    status, out, err = run_cli("camera-config", "set", reg.camera, str(path))

    assert (status, out) == (1, "")
    assert err.startswith(f"error: {path}: ")
    printed = err.splitlines()
    for line in lines:
        assert any(p.startswith(line) or line in p for p in printed), (line, err)
    assert versions_of(app, reg.camera) == [2, 1]


def test_camera_config_set_for_an_unknown_camera_is_one_line(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    path = tmp_path / "setup.json"
    path.write_text(json.dumps(SETUP))
    assert run_cli("camera-config", "set", "nope", str(path)) == (
        1,
        "",
        "error: camera 'nope' does not exist\n",
    )


# --- structure ------------------------------------------------------------------------------


def test_the_api_does_not_import_the_worker() -> None:
    """The API and the worker share the contract only: the API installs without the model
    runtime, and a worker change cannot change what the API accepts."""
    offenders = []
    for path in sorted((REPO / "api").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "detector"]
    assert offenders == []
