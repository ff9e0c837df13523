"""Ingest rules: what a device token may store, checked whole before anything is stored.

Table-driven over SQLite and PostgreSQL: each refused batch or heartbeat is a 422 that names
the problem, and every table keeps its row count (a batch is all or nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_testkit import Registered, batch, make_report, register, settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from api.app import create_app
from api.db import session_scope
from api.models import Base, Camera, DeviceHealth, IntervalReportRecord
from api.schemas import CameraIn, LineIn, ZoneIn
from api.services import registry
from api.services.ingest import AcceptWindow, ingest_batch, record_heartbeat
from contract import Heartbeat, align_interval_start

MAX_AGE_DAYS = 30
MAX_AHEAD_S = 600
Start = Callable[[datetime], datetime]
"""A report's start, from the server time the test runs at."""


def hour_base(now: datetime) -> datetime:
    """An hour well inside the window, aligned for every interval length."""
    return align_interval_start(now - timedelta(hours=2), 3600)


def in_base_hour(minutes: int) -> Start:
    return lambda now: hour_base(now) + timedelta(minutes=minutes)


def from_now(delta: timedelta) -> Start:
    return lambda now: align_interval_start(now + delta, 60)


def at(moment: datetime) -> Start:
    return lambda _now: moment


def stamp(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def rules_app(database_url: str) -> FastAPI:
    """The window set explicitly, whatever the environment says."""
    window = {"ingest_max_age_days": MAX_AGE_DAYS, "ingest_max_ahead_s": MAX_AHEAD_S}
    return create_app(settings_for(database_url).model_copy(update=window))


@pytest.fixture
def rules_client(rules_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(rules_app, raise_server_exceptions=False) as client:
        yield client


def table_counts(app: FastAPI) -> dict[str, int]:
    with app.state.session_factory() as session:
        return {
            table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }


def set_interval(app: FastAPI, camera_id: str, site_id: str, seconds: int) -> None:
    """Re-register the camera with another interval, as PUT /admin/cameras does."""
    spec = CameraIn(
        id=camera_id,
        site_id=site_id,
        interval_seconds=seconds,
        lines=[LineIn(name="main", direction_names={"down": "southbound", "up": "northbound"})],
        zones=[ZoneIn(name="approach", lanes=2, length_m=40.0)],
    )
    with session_scope(app.state.session_factory) as session:
        registry.register_camera(session, spec, replace=True)


@dataclass(frozen=True)
class Refused:
    """A batch posted while the camera has `interval_s`, after `stored` was accepted while it
    had `stored_interval_s`; the 422 must contain `message` (formatted with `camera` and the
    resolved `starts`)."""

    posted: tuple[tuple[Start, int], ...]
    message: str
    interval_s: int = 60
    stored: tuple[tuple[Start, int], ...] = ()
    stored_interval_s: int = 60


REFUSED = {
    "length-differs-from-the-camera": Refused(
        ((in_base_hour(0), 300),),
        "interval_seconds 300 differs from camera '{camera}''s registered interval of 60 s",
    ),
    "60-s-inside-a-stored-300-s": Refused(
        ((in_base_hour(2), 60),),
        "overlaps the stored 300-s report from {stored0}",
        stored=((in_base_hour(0), 300),),
        stored_interval_s=300,
    ),
    "300-s-over-a-stored-60-s": Refused(
        ((in_base_hour(0), 300),),
        "overlaps the stored 60-s report from {stored0}",
        interval_s=300,
        stored=((in_base_hour(4), 60),),
    ),
    "3600-s-over-a-stored-900-s": Refused(
        ((in_base_hour(0), 3600),),
        "overlaps the stored 900-s report from {stored0}",
        interval_s=3600,
        stored=((in_base_hour(45), 900),),
        stored_interval_s=900,
    ),
    "two-lengths-in-one-batch": Refused(
        ((in_base_hour(1), 60), (in_base_hour(0), 300)), "interval_seconds 300 differs"
    ),
    "year-1": Refused(
        ((at(datetime(1, 1, 1, tzinfo=UTC)), 60),),
        f"starts more than {MAX_AGE_DAYS} days before server time",
    ),
    "year-9999": Refused(
        ((at(datetime(9999, 12, 31, 23, 59, tzinfo=UTC)), 60),),
        f"ends more than {MAX_AHEAD_S} s after server time",
    ),
    "31-days-ago": Refused(
        ((from_now(-timedelta(days=MAX_AGE_DAYS + 1)), 60),), "starts more than 30 days"
    ),
    "11-minutes-ahead": Refused(((from_now(timedelta(minutes=11)), 60),), "ends more than 600 s"),
    "one-bad-report-refuses-the-batch": Refused(
        ((in_base_hour(0), 60), (at(datetime(1, 1, 1, tzinfo=UTC)), 60)),
        "report {posted1_id} (0001-01-01T00:00:00Z): starts more than 30 days",
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_refused_batches_are_422_with_the_reason_and_store_nothing(
    rules_app: FastAPI, rules_client: TestClient, case: Refused
) -> None:
    settings = rules_app.state.settings
    reg = register(settings, interval_seconds=case.stored_interval_s)
    now = datetime.now(UTC)
    stored = [make_report(reg.camera, s(now), interval_seconds=n) for s, n in case.stored]
    if stored:
        response = rules_client.post("/api/v1/reports", json=batch(*stored), headers=reg.auth)
        assert response.status_code == 200, response.text
    if case.interval_s != case.stored_interval_s:
        set_interval(rules_app, reg.camera, reg.site, case.interval_s)
    posted = [make_report(reg.camera, s(now), interval_seconds=n) for s, n in case.posted]
    before = table_counts(rules_app)

    response = rules_client.post("/api/v1/reports", json=batch(*posted), headers=reg.auth)

    assert response.status_code == 422, response.text
    names: dict[str, Any] = {"camera": reg.camera}
    names |= {f"stored{i}": stamp(r.interval_start) for i, r in enumerate(stored)}
    names |= {f"posted{i}_id": r.report_id for i, r in enumerate(posted)}
    assert case.message.format(**names) in response.json()["detail"]
    assert table_counts(rules_app) == before


ACCEPTED: dict[str, tuple[Start, int]] = {
    "29-days-ago": (from_now(-timedelta(days=MAX_AGE_DAYS - 1)), 60),
    "the-current-minute": (from_now(timedelta(0)), 60),
    "ending-9-minutes-ahead": (from_now(timedelta(minutes=8)), 60),
    "300-s-after-a-60-s-hour": (in_base_hour(5), 300),
}


@pytest.mark.parametrize("posted", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_reports_inside_the_rules_are_stored(
    rules_app: FastAPI, rules_client: TestClient, posted: tuple[Start, int]
) -> None:
    start, seconds = posted
    reg = register(rules_app.state.settings, interval_seconds=60)
    now = datetime.now(UTC)
    earlier = make_report(reg.camera, in_base_hour(4)(now))  # 60 s, just before minute 5
    assert rules_client.post("/api/v1/reports", json=batch(earlier), headers=reg.auth).is_success
    set_interval(rules_app, reg.camera, reg.site, seconds)
    report = make_report(reg.camera, start(now), interval_seconds=seconds)
    response = rules_client.post("/api/v1/reports", json=batch(report), headers=reg.auth)
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 1


def test_an_identical_resend_stays_a_duplicate_after_the_rules_moved_on(
    database_url: str, rules_app: FastAPI, rules_client: TestClient
) -> None:
    """Resending is always safe: reports stored under a wider window and an older interval
    come back as duplicates, not as a 422 that would dead-letter data the API already has."""
    reg = register(rules_app.state.settings)
    now = datetime.now(UTC)
    stored = batch(
        make_report(reg.camera, from_now(-timedelta(days=MAX_AGE_DAYS + 10))(now)),
        make_report(reg.camera, hour_base(now)),
    )
    wider = settings_for(database_url).model_copy(update={"ingest_max_age_days": 3650})
    with TestClient(create_app(wider)) as earlier:
        assert earlier.post("/api/v1/reports", json=stored, headers=reg.auth).status_code == 200
    set_interval(rules_app, reg.camera, reg.site, 300)
    response = rules_client.post("/api/v1/reports", json=stored, headers=reg.auth)
    assert response.status_code == 200, response.text
    assert (response.json()["created"], response.json()["duplicates"]) == (0, 2)


def heartbeat(camera: str, streams: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "camera_id": camera,
        "sent_at": stamp(datetime.now(UTC)),
        "uptime_s": 60.0,
        "outbox_backlog": 0,
        "dropped_reports": 0,
        "streams": [
            {"camera_id": s, "state": "streaming", "reconnects": 0, "fps": 10.0} for s in streams
        ],
        "config_version": 1,
    } | extra


@pytest.mark.parametrize(
    "streams",
    [["{other}"], ["{mine}", "{other}"], ["{other}", "{other}"]],
    ids=["another-camera", "mine-and-another", "another-twice"],
)
def test_heartbeat_streams_of_another_camera_are_422(
    rules_app: FastAPI, rules_client: TestClient, streams: list[str]
) -> None:
    mine, other = register(rules_app.state.settings), register(rules_app.state.settings)
    names = [s.format(mine=mine.camera, other=other.camera) for s in streams]
    before = table_counts(rules_app)
    response = rules_client.post(
        "/api/v1/heartbeat", json=heartbeat(mine.camera, names), headers=mine.auth
    )
    assert response.status_code == 422, response.text
    assert f"heartbeat streams name camera {other.camera!r}" in response.json()["detail"]
    assert table_counts(rules_app) == before


def dead_lettered_reports(app: FastAPI, camera: str) -> int | None:
    with app.state.session_factory() as session:
        health = session.get(DeviceHealth, camera)
        return None if health is None else health.dead_lettered_reports


def test_heartbeat_dead_letter_count_is_stored_and_old_heartbeats_still_count(
    rules_app: FastAPI, rules_client: TestClient
) -> None:
    reg = register(rules_app.state.settings)
    new = heartbeat(reg.camera, [reg.camera], dead_lettered_reports=3)
    assert rules_client.post("/api/v1/heartbeat", json=new, headers=reg.auth).status_code == 200
    assert dead_lettered_reports(rules_app, reg.camera) == 3
    old = heartbeat(reg.camera, [reg.camera])  # a worker from before the field
    assert rules_client.post("/api/v1/heartbeat", json=old, headers=reg.auth).status_code == 200
    assert dead_lettered_reports(rules_app, reg.camera) == 0


def stored_reports(app: FastAPI, camera: str) -> int:
    with app.state.session_factory() as session:
        statement = select(func.count()).where(IntervalReportRecord.camera_id == camera)
        return int(session.execute(statement).scalar_one())


def window(app: FastAPI) -> AcceptWindow:
    return AcceptWindow.from_settings(app.state.settings, datetime.now(UTC))


@pytest.mark.parametrize("work", ["reports", "heartbeat"])
def test_the_services_leave_the_commit_to_the_caller(rules_app: FastAPI, work: str) -> None:
    reg = register(rules_app.state.settings)
    with rules_app.state.session_factory() as session:
        camera = session.get(Camera, reg.camera)
        assert camera is not None
        if work == "reports":
            report = make_report(reg.camera, hour_base(datetime.now(UTC)))
            assert ingest_batch(session, camera, [report], window(rules_app)).created == 1
        else:
            record_heartbeat(session, camera, Heartbeat.model_validate(heartbeat(reg.camera, [])))
        session.rollback()
    assert stored_reports(rules_app, reg.camera) == 0
    assert dead_lettered_reports(rules_app, reg.camera) is None


def test_a_resend_that_wins_the_race_to_insert_turns_the_request_into_a_duplicate(
    rules_app: FastAPI, rules_client: TestClient, registered_here: Registered
) -> None:
    """The same report committed by a concurrent request between this request's check and its
    insert (staged right after the read of what is stored, since PostgreSQL's inserts are a
    COPY that no statement event sees): the unique violation is retried once, and the answer
    is a duplicate, not a 500."""
    reg = registered_here
    report = make_report(reg.camera, hour_base(datetime.now(UTC)))
    engine = rules_app.state.session_factory.kw["bind"]
    raced = []

    def concurrent_resend(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "payload_sha256" in statement and statement.startswith("SELECT") and not raced:
            raced.append(statement)
            with session_scope(rules_app.state.session_factory) as other:
                camera = other.get(Camera, reg.camera)
                assert camera is not None
                ingest_batch(other, camera, [report], window(rules_app))

    event.listen(engine, "after_cursor_execute", concurrent_resend)
    try:
        response = rules_client.post("/api/v1/reports", json=batch(report), headers=reg.auth)
    finally:
        event.remove(engine, "after_cursor_execute", concurrent_resend)
    assert raced, "the race was not staged"
    assert response.status_code == 200, response.text
    assert (response.json()["created"], response.json()["duplicates"]) == (0, 1)
    assert stored_reports(rules_app, reg.camera) == 1


@pytest.fixture
def registered_here(rules_app: FastAPI, rules_client: TestClient) -> Registered:
    """A camera whose token was just used, so this minute's requests write nothing before the
    report insert (the token's last use is kept to the minute)."""
    reg = register(rules_app.state.settings)
    beat = heartbeat(reg.camera, [reg.camera])
    assert rules_client.post("/api/v1/heartbeat", json=beat, headers=reg.auth).status_code == 200
    return reg
