"""Scene maps: a worker posts them (strictly checked, bounded, its own camera only), an editor
asks for a fresh one and reads the newest back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from accounts_testkit import admin_token_headers, count_rows, events_for, sign_in
from api_testkit import T0, Registered, register
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.models import AuditEvent, Camera, SceneMapRecord
from api.routers.commissioning import SCENE_MAP_MAX_BYTES
from api.services.scene_maps import KEEP_PER_CAMERA
from contract.scene import SceneMap

POST = "/api/v1/device/scene-map"


def scene_map(camera: str, window_end: datetime = T0, **overrides: Any) -> dict[str, Any]:
    """A valid map as a worker sends it (ints where JSON has ints, as the worker's would)."""
    body: dict[str, Any] = {
        "camera_id": camera,
        "config_version": 1,
        "window_start": (window_end - timedelta(minutes=5)).isoformat(),
        "window_end": window_end.isoformat(),
        "analysed_s": 300.0,
        "frame_width": 1280,
        "frame_height": 720,
        "cols": 64,
        "rows": 36,
        "k": 3,
        "vehicles": 41,
        "withheld_cells": 7,
        "cells": [
            {"c": 10, "r": 20, "n": 7, "vx": 40, "vy": -3, "s": 0.2, "k": [0, 4, 0, 3, 0]},
            {"c": 11, "r": 20, "n": 3, "vx": 38, "vy": -2, "s": 0.0, "k": [0, 3, 0, 0, 0]},
        ],
        "proposals": {
            "lines": [
                {
                    "name": "main",
                    "points": [[100, 400], [1180, 420]],
                    "direction_names": {"down": "southbound", "up": "northbound"},
                    "confidence": 0.8,
                    "reason": "one corridor crossing the frame",
                }
            ],
            "zones": [
                {
                    "name": "approach",
                    "polygon": [[0, 300], [640, 300], [640, 500], [0, 500]],
                    "lanes": 2,
                    "confidence": 0.6,
                    "reason": "vehicles stop here",
                }
            ],
        },
    }
    return body | overrides


def with_cell(camera: str, **cell: Any) -> dict[str, Any]:
    body = scene_map(camera)
    first = body["cells"][0] | cell
    return body | {"cells": [first, *body["cells"][1:]]}


def padded(camera: str, size: int) -> bytes:
    """A valid map, padded with JSON whitespace to `size` bytes: only the size is wrong."""
    raw = json.dumps(scene_map(camera)).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def chunks(body: bytes) -> Iterator[bytes]:
    """A body streamed without Content-Length."""
    for i in range(0, len(body), 4096):
        yield body[i : i + 4096]


Hostile = Callable[[Registered], dict[str, Any]]
HOSTILE_MAPS: dict[str, Hostile] = {
    "cell seen by fewer than k": lambda r: with_cell(r.camera, n=2),
    "class seen by fewer than k": lambda r: with_cell(r.camera, k=[0, 4, 0, 1, 0]),
    "k below the API's minimum": lambda r: scene_map(r.camera, k=2),
    "cell outside the grid": lambda r: with_cell(r.camera, c=64),
    "duplicate cell": lambda r: with_cell(r.camera, c=11, r=20),
    "extra field": lambda r: scene_map(r.camera, frames=[[0, 0]]),
    "extra field in a cell": lambda r: with_cell(r.camera, track_id=7),
    "another camera": lambda r: scene_map("cam-someone-else"),
    "window ends before it starts": lambda r: (
        scene_map(r.camera, window_start=T0.isoformat())
        | {"window_end": (T0 - timedelta(seconds=1)).isoformat()}
    ),
    "naive window time": lambda r: scene_map(r.camera) | {"window_end": "2026-03-02T08:00:00"},
    "count as a string": lambda r: with_cell(r.camera, n="5"),
    "too many cells": lambda r: scene_map(
        r.camera,
        cols=96,
        rows=96,
        cells=[
            {"c": i % 96, "r": i // 96, "n": 3, "vx": 0, "vy": 0, "s": 0, "k": [0, 3, 0, 0, 0]}
            for i in range(641)
        ],
    ),
}


def stored_maps(app: FastAPI, camera: str) -> int:
    return count_rows(app, SceneMapRecord, SceneMapRecord.camera_id == camera)


def test_a_valid_map_is_stored_and_served_back_as_sent(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    body = scene_map(reg.camera)
    response = client.post(POST, json=body, headers=reg.auth)
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["camera_id"] == reg.camera
    assert receipt["cells"] == 2
    editor = sign_in(app, "editor")
    served = client.get(f"/api/v1/cameras/{reg.camera}/scene-map", headers=editor.headers)
    assert served.status_code == 200, served.text
    assert served.json()["received_at"] == receipt["received_at"]
    assert served.json()["requested_at"] is None
    assert SceneMap.model_validate(served.json()["scene_map"]) == SceneMap.model_validate(body)


@pytest.mark.parametrize("case", list(HOSTILE_MAPS))
def test_a_hostile_map_is_refused_and_nothing_is_stored(
    client: TestClient, app: FastAPI, case: str
) -> None:
    reg = register(app.state.settings)
    response = client.post(POST, json=HOSTILE_MAPS[case](reg), headers=reg.auth)
    assert response.status_code == 422, response.text
    assert stored_maps(app, reg.camera) == 0


@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
def test_a_body_over_64_kib_is_413_and_nothing_is_stored(
    client: TestClient, app: FastAPI, streamed: bool
) -> None:
    reg = register(app.state.settings)
    headers = reg.auth | {"Content-Type": "application/json"}
    fits = client.post(POST, content=padded(reg.camera, SCENE_MAP_MAX_BYTES), headers=headers)
    assert fits.status_code == 200, fits.text
    body = padded(reg.camera, 65 * 1024)
    response = client.post(POST, content=chunks(body) if streamed else body, headers=headers)
    assert response.status_code == 413, response.text
    assert "at most 65536 bytes" in response.json()["detail"]
    assert stored_maps(app, reg.camera) == 1


@pytest.mark.parametrize(
    "auth",
    [{}, {"Authorization": "Bearer nope"}, "admin token"],
    ids=["no token", "wrong token", "admin token"],
)
def test_only_a_device_token_may_post_a_map(
    client: TestClient, app: FastAPI, auth: dict[str, str] | str
) -> None:
    reg = register(app.state.settings)
    headers = admin_token_headers(app) if auth == "admin token" else auth
    assert isinstance(headers, dict)
    response = client.post(POST, json=scene_map(reg.camera), headers=headers)
    assert response.status_code == 401, response.text
    assert stored_maps(app, reg.camera) == 0


def test_only_the_newest_maps_are_kept(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    total = KEEP_PER_CAMERA + 3
    for n in range(total):
        body = scene_map(reg.camera, T0 + timedelta(minutes=n))
        assert client.post(POST, json=body, headers=reg.auth).status_code == 200
    other = register(app.state.settings)
    assert client.post(POST, json=scene_map(other.camera), headers=other.auth).status_code == 200
    assert stored_maps(app, reg.camera) == KEEP_PER_CAMERA
    assert stored_maps(app, other.camera) == 1
    with app.state.session_factory() as session:
        ends = sorted(
            r.window_end
            for r in session.query(SceneMapRecord).filter_by(camera_id=reg.camera).all()
        )
    assert ends[0] == T0 + timedelta(minutes=total - KEEP_PER_CAMERA)
    editor = sign_in(app, "editor")
    newest = client.get(f"/api/v1/cameras/{reg.camera}/scene-map", headers=editor.headers)
    assert newest.json()["scene_map"]["window_end"].startswith("2026-03-02T08:22:00")


def requested_at(app: FastAPI, camera: str) -> datetime | None:
    with app.state.session_factory() as session:
        found = session.get(Camera, camera)
        assert found is not None
        return found.scene_map_requested_at


def test_a_request_stays_pending_until_a_map_arrives_after_it(
    client: TestClient, app: FastAPI
) -> None:
    reg = register(app.state.settings)
    editor = sign_in(app, "editor")
    url = f"/api/v1/cameras/{reg.camera}/scene-map"
    never = client.get(url, headers=editor.headers)
    assert never.status_code == 404
    assert "none has been requested" in never.json()["detail"]

    first = client.post(f"{url}/request", headers=editor.headers)
    assert first.status_code == 202, first.text
    asked = datetime.fromisoformat(first.json()["requested_at"])
    assert requested_at(app, reg.camera) == asked
    again = client.post(f"{url}/request", headers=editor.headers)
    assert again.json()["requested_at"] == first.json()["requested_at"], "a pending one is kept"
    waiting = client.get(url, headers=editor.headers)
    assert waiting.status_code == 404
    assert "requested at" in waiting.json()["detail"]

    # the worker's clock is an hour behind: its window ends "before" the request, yet it
    # learnt the map because it was asked, and the API's own clock says it came after
    behind = scene_map(reg.camera, asked - timedelta(hours=1))
    assert client.post(POST, json=behind, headers=reg.auth).status_code == 200
    assert requested_at(app, reg.camera) is None
    assert client.get(url, headers=editor.headers).json()["requested_at"] is None

    asked = datetime.fromisoformat(
        client.post(f"{url}/request", headers=editor.headers).json()["requested_at"]
    )
    assert requested_at(app, reg.camera) == asked, "a new request after the map: pending"
    events = [e for e in events_for(app, reg.camera) if e.action == "camera.scene_map_request"]
    assert [e.actor for e in events] == [editor.email] * 3


PRINCIPALS = ["anonymous", "viewer", "editor", "editor of another site", "admin token"]
ALLOWED = {"editor", "admin token"}


def headers_of(app: FastAPI, who: str, reg: Registered) -> dict[str, str]:
    if who == "anonymous":
        return {}
    if who == "admin token":
        return admin_token_headers(app)
    if who == "editor of another site":
        return sign_in(app, "editor", [register(app.state.settings).site]).headers
    return sign_in(app, who).headers  # type: ignore[arg-type]


@pytest.mark.parametrize("who", PRINCIPALS)
@pytest.mark.parametrize("method", ["POST", "GET"], ids=["request", "read"])
def test_editors_of_the_site_request_and_read_maps(
    client: TestClient, app: FastAPI, who: str, method: str
) -> None:
    reg = register(app.state.settings)
    assert client.post(POST, json=scene_map(reg.camera), headers=reg.auth).status_code == 200
    url = f"/api/v1/cameras/{reg.camera}/scene-map" + ("/request" if method == "POST" else "")
    headers = headers_of(app, who, reg)
    events_before = count_rows(app, AuditEvent)
    response = client.request(method, url, headers=headers)
    expected = {
        "anonymous": 401,
        "viewer": 403,
        "editor of another site": 404,
    }.get(who, 202 if method == "POST" else 200)
    assert response.status_code == expected, response.text
    audited = count_rows(app, AuditEvent) - events_before
    assert audited == (1 if expected == 202 else 0)
    assert (requested_at(app, reg.camera) is not None) == (expected == 202)
    if expected == 404:
        missing = client.get(
            "/api/v1/cameras/cam-nowhere/scene-map", headers=headers_of(app, "editor", reg)
        )
        assert response.json()["detail"] == missing.json()["detail"].replace(
            "cam-nowhere", reg.camera
        )


def test_a_request_without_the_csrf_token_changes_nothing(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    editor = sign_in(app, "editor")
    cookie_only = {"Cookie": editor.headers["Cookie"]}
    url = f"/api/v1/cameras/{reg.camera}/scene-map/request"
    assert client.post(url, headers=cookie_only).status_code == 403
    assert requested_at(app, reg.camera) is None
    assert (
        client.post(
            "/api/v1/cameras/cam-nowhere/scene-map/request", headers=editor.headers
        ).status_code
        == 404
    )
