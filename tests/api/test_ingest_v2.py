"""Version 2 reports and heartbeats: each report is checked against the configuration version
it was counted with, movements are stored idempotently, and the heartbeat carries the pull.

Table-driven over SQLite and PostgreSQL. Every case switches a camera from version 2 (60 s,
line `main`, zone `approach`) to version 3 (300 s, lines `east` and `west`, no zone) and then
posts: reports counted before the switch must still be accepted after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_testkit import Registered, batch, make_report, register, zone_row
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.db import session_scope
from api.models import (
    Camera,
    DeviceHealth,
    IntervalReportRecord,
    MovementRecord,
    UnmatchedRecord,
)
from api.services import camera_config
from contract import IntervalReport, align_interval_start
from contract.camera import CameraSetup

V2: dict[str, Any] = {
    "lines": [
        {
            "name": "main",
            "points": [[0, 0.5], [1, 0.5]],
            "direction_names": {"down": "southbound", "up": "northbound"},
        }
    ],
    "zones": [{"name": "approach", "polygon": [[0, 0.6], [1, 0.6], [1, 1], [0, 1]]}],
    "interval_seconds": 60,
}
V3: dict[str, Any] = {
    "lines": [
        {"name": "east", "points": [[0.6, 0], [0.6, 1]], "direction_names": {"left": "inbound"}},
        {"name": "west", "points": [[0.4, 0], [0.4, 1]]},
    ],
    "interval_seconds": 300,
}
Counts = dict[tuple[str, str, str], int]
MAIN: Counts = {("main", "northbound", "car"): 3}
EAST: Counts = {("east", "inbound", "car"): 4}


def hour_base() -> datetime:
    """An hour well inside the accepted window, aligned for every interval length."""
    return align_interval_start(datetime.now(UTC) - timedelta(hours=2), 3600)


@dataclass(frozen=True)
class Sent:
    """A report to build: minutes after the base hour, its length and version, and rows."""

    minute: int
    seconds: int
    version: int | None
    counts: Counts
    schema: int = 2
    zones: tuple[str, ...] = ()
    movements: tuple[tuple[str, str, int], ...] = ()
    unmatched: tuple[tuple[str, int], ...] = ()

    def build(self, camera: str, base: datetime) -> IntervalReport:
        made = make_report(
            camera,
            base + timedelta(minutes=self.minute),
            self.counts,
            interval_seconds=self.seconds,
            zones=[zone_row(zone=z) for z in self.zones] or None,
        )
        later: dict[str, Any] = {
            "config_version": self.version,
            "movements": [
                {
                    "origin": o,
                    "destination": d,
                    "movement": None,
                    "vehicle_class": "car",
                    "count": n,
                }
                for o, d, n in self.movements
            ],
            "unmatched": [
                {"gate": g, "vehicle_class": "car", "count": n} for g, n in self.unmatched
            ],
        }
        if self.schema == 2:
            later["health"] = made.health.model_dump() | {
                "analysed_fps": 12.5,
                "detection_share": 0.5,
            }
        return IntervalReport.model_validate(
            made.model_dump() | {"schema_version": self.schema} | later
        )


def switched_camera(app: FastAPI) -> Registered:
    """A camera that counted with version 2 and now has version 3."""
    reg = register(app.state.settings)
    with session_scope(app.state.session_factory) as session:
        for setup in (V2, V3):
            camera_config.save_config(session, reg.camera, CameraSetup.model_validate(setup))
    return reg


def post(client: TestClient, reg: Registered, *reports: IntervalReport) -> Any:
    return client.post("/api/v1/reports", json=batch(*reports), headers=reg.auth)


@dataclass(frozen=True)
class Case:
    """Reports posted after the switch (after `stored` was accepted); a refusal's 422 holds
    `refused`, formatted with the camera id and the stamps of the posted reports."""

    posted: tuple[Sent, ...]
    refused: str | None = None
    stored: tuple[Sent, ...] = field(default=())


CASES = {
    "counted with v2 before the switch": Case(
        (Sent(0, 60, 2, MAIN, zones=("approach",)), Sent(1, 60, 2, MAIN))
    ),
    "counted with v3": Case((Sent(30, 300, 3, EAST),)),
    "both sides of the switch in one batch": Case((Sent(0, 60, 2, MAIN), Sent(5, 300, 3, EAST))),
    "v2 after stored v3 reports": Case((Sent(0, 60, 2, MAIN),), stored=(Sent(5, 300, 3, EAST),)),
    "a version 1 report meets the registration (v1)": Case((Sent(0, 60, None, MAIN, schema=1),)),
    "an unknown version meets the registration": Case((Sent(0, 60, 7, MAIN),)),
    "v2 with a line of v3": Case(
        (Sent(0, 60, 2, EAST),),
        "camera '{camera}' (configuration version 2) has no line 'east' (lines: main)",
    ),
    "v2 with a direction of v3": Case(
        (Sent(0, 60, 2, {("main", "inbound", "car"): 1}),),
        "line 'main' of camera '{camera}' (configuration version 2) has no direction 'inbound'",
    ),
    "v3 with v2's interval": Case(
        (Sent(0, 60, 3, EAST),),
        "interval_seconds 60 differs from camera '{camera}''s interval in configuration version 3"
        " of 300 s",
    ),
    "v3 with v2's zone": Case(
        (Sent(0, 300, 3, EAST, zones=("approach",)),),
        "camera '{camera}' (configuration version 3) has no zone 'approach' (zones: none)",
    ),
    "a version 1 report with the new interval": Case(
        (Sent(0, 300, None, EAST, schema=1),),
        "differs from camera '{camera}''s interval in configuration version 1 of 60 s",
    ),
    "the two sides overlapping in one batch": Case(
        (Sent(2, 60, 2, MAIN), Sent(0, 300, 3, EAST)),
        "report {id0} ({at0}): overlaps the 300-s report from {at1} in the same batch",
    ),
    "v2 inside a stored v3 report": Case(
        (Sent(1, 60, 2, MAIN),),
        "overlaps the stored 300-s report from {stored0}",
        stored=(Sent(0, 300, 3, EAST),),
    ),
    "a batch of both lengths, one report inside a stored one": Case(
        (Sent(0, 60, 2, MAIN), Sent(11, 60, 2, MAIN), Sent(20, 300, 3, EAST)),
        "overlaps the stored 300-s report from {stored0}",
        stored=(Sent(10, 300, 3, EAST),),
    ),
    "a movement gate that is no line": Case(
        (Sent(0, 300, 3, EAST, movements=(("east", "north", 2),)),),
        "camera '{camera}' (configuration version 3) has no line 'north' to be a gate",
    ),
    "an unmatched gate of the old version": Case(
        (Sent(0, 300, 3, EAST, unmatched=(("main", 1),)),),
        "(configuration version 3) has no line 'main' to be a gate (lines: east, west)",
    ),
}


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_reports_are_checked_against_the_version_they_were_counted_with(
    app: FastAPI, client: TestClient, case: Case
) -> None:
    reg, base = switched_camera(app), hour_base()
    stored = [s.build(reg.camera, base) for s in case.stored]
    if stored:
        assert post(client, reg, *stored).status_code == 200
    posted = [s.build(reg.camera, base) for s in case.posted]
    before = report_count(app, reg.camera)

    response = post(client, reg, *posted)

    if case.refused is None:
        assert response.status_code == 200, response.text
        assert response.json()["created"] == len(posted)
        return
    assert response.status_code == 422, response.text
    names = {"camera": reg.camera} | {
        f"stored{i}": stamp(r.interval_start) for i, r in enumerate(stored)
    }
    names |= {f"at{i}": stamp(r.interval_start) for i, r in enumerate(posted)}
    names |= {f"id{i}": r.report_id for i, r in enumerate(posted)}
    assert case.refused.format(**names) in response.json()["detail"]
    assert report_count(app, reg.camera) == before


def report_count(app: FastAPI, camera: str) -> int:
    with app.state.session_factory() as session:
        statement = select(func.count()).where(IntervalReportRecord.camera_id == camera)
        return int(session.execute(statement).scalar_one())


def test_a_version_1_report_is_still_accepted_on_a_camera_without_stored_versions(
    app: FastAPI, client: TestClient
) -> None:
    reg = register(app.state.settings)
    response = post(client, reg, Sent(0, 60, None, MAIN, schema=1).build(reg.camera, hour_base()))
    assert response.status_code == 200, response.text
    with app.state.session_factory() as session:
        (stored,) = session.scalars(
            select(IntervalReportRecord).where(IntervalReportRecord.camera_id == reg.camera)
        )
        assert (stored.config_version, stored.analysed_fps, stored.detection_share) == (
            None,
            None,
            None,
        )


def rows_of(app: FastAPI, camera: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with app.state.session_factory() as session:
        moves = session.execute(
            select(
                MovementRecord.origin,
                MovementRecord.destination,
                MovementRecord.vehicle_class,
                MovementRecord.count,
            ).where(MovementRecord.camera_id == camera)
        ).all()
        unmatched = session.execute(
            select(UnmatchedRecord.gate, UnmatchedRecord.count).where(
                UnmatchedRecord.camera_id == camera
            )
        ).all()
    return [tuple(m) for m in moves], [tuple(u) for u in unmatched]


def test_movements_and_v2_fields_are_stored_once_and_a_changed_resend_conflicts(
    app: FastAPI, client: TestClient
) -> None:
    reg, base = switched_camera(app), hour_base()
    sent = Sent(0, 300, 3, EAST, movements=(("east", "west", 4),), unmatched=(("west", 1),))
    report = sent.build(reg.camera, base)
    assert post(client, reg, report).json()["created"] == 1
    expected = ([("east", "west", "car", 4)], [("west", 1)])
    assert rows_of(app, reg.camera) == expected

    again = post(client, reg, report)
    assert (again.status_code, again.json()["duplicates"]) == (200, 1)
    changed = Sent(0, 300, 3, EAST, movements=(("east", "west", 5),), unmatched=(("west", 1),))
    conflict = post(client, reg, changed.build(reg.camera, base))
    assert (conflict.status_code, conflict.json()["conflicts"]) == (409, 1)
    assert rows_of(app, reg.camera) == expected, "the first stays"
    with app.state.session_factory() as session:
        (stored,) = session.scalars(
            select(IntervalReportRecord).where(IntervalReportRecord.camera_id == reg.camera)
        )
        assert (stored.config_version, stored.analysed_fps, stored.detection_share) == (
            3,
            12.5,
            0.5,
        )


# --- heartbeats -----------------------------------------------------------------------------


def heartbeat(camera: str, version: int, **extra: Any) -> dict[str, Any]:
    return {
        "camera_id": camera,
        "sent_at": stamp(datetime.now(UTC).replace(microsecond=0)),
        "uptime_s": 60.0,
        "outbox_backlog": 0,
        "dropped_reports": 0,
        "streams": [],
        "config_version": version,
    } | extra


def pull(status: str, reason: str | None = None) -> dict[str, Any]:
    return {"version": 3, "status": status, "reason": reason, "at": "2026-03-02T08:00:00Z"}


def request_scene_map(app: FastAPI, camera: str) -> None:
    """What an editor's scene-map request leaves on the camera."""
    with session_scope(app.state.session_factory) as session:
        found = session.get(Camera, camera)
        assert found is not None
        found.scene_map_requested_at = datetime.now(UTC)


HEARTBEATS: dict[str, tuple[Callable[[FastAPI, Registered], None], dict[str, Any], int, bool]] = {
    "no version stored: none": (lambda app, reg: None, {}, 0, False),
    "versions stored: the newest": (lambda app, reg: switch(app, reg), {}, 3, False),
    "a scene map requested": (lambda app, reg: request_scene_map(app, reg.camera), {}, 0, True),
    "a refused pull": (
        lambda app, reg: switch(app, reg),
        {"config_pull": pull("refused", "line 'east' is outside the 640x360 stream")},
        3,
        False,
    ),
}


def switch(app: FastAPI, reg: Registered) -> None:
    with session_scope(app.state.session_factory) as session:
        for setup in (V2, V3):
            camera_config.save_config(session, reg.camera, CameraSetup.model_validate(setup))


@pytest.mark.parametrize(
    ("prepare", "extra", "version", "wanted"), HEARTBEATS.values(), ids=HEARTBEATS.keys()
)
def test_the_heartbeat_reply_names_the_newest_version_and_a_wanted_scene_map(
    app: FastAPI,
    client: TestClient,
    prepare: Callable[[FastAPI, Registered], None],
    extra: dict[str, Any],
    version: int,
    wanted: bool,
) -> None:
    reg = register(app.state.settings)
    prepare(app, reg)
    response = client.post(
        "/api/v1/heartbeat", json=heartbeat(reg.camera, 2, **extra), headers=reg.auth
    )
    assert response.status_code == 200, response.text
    reply = response.json()
    assert (reply["config_version"], reply["scene_map_wanted"]) == (version, wanted)
    with app.state.session_factory() as session:
        health = session.get(DeviceHealth, reg.camera)
        assert health is not None
        assert health.config_pull == extra.get("config_pull")


def test_the_planner_sees_the_workers_version_and_last_pull(
    app: FastAPI, client: TestClient, admin_headers: dict[str, str]
) -> None:
    reg = register(app.state.settings)
    switch(app, reg)
    url = f"/api/v1/cameras/{reg.camera}/config"
    before = client.get(url, headers=admin_headers).json()
    assert (before["reported_version"], before["config_pull"]) == (None, None)
    refused = pull("refused", "line 'east' is outside the 640x360 stream")
    beat = heartbeat(reg.camera, 2, config_pull=refused)
    assert client.post("/api/v1/heartbeat", json=beat, headers=reg.auth).status_code == 200

    after = client.get(url, headers=admin_headers).json()

    assert (after["version"], after["reported_version"], after["config_pull"]) == (3, 2, refused)
    old_worker = heartbeat(reg.camera, 2, schema_version=1)
    assert client.post("/api/v1/heartbeat", json=old_worker, headers=reg.auth).status_code == 200
    assert client.get(url, headers=admin_headers).json()["config_pull"] is None, "the latest beat's"
