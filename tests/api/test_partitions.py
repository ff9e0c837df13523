"""Raw-row storage: PostgreSQL's monthly partitions, the default partition, and retention.

On real databases: the API creates partitions ahead at start-up, a report of a month without
one is kept (default partition) and moves into its own month later, retention drops whole old
months on PostgreSQL and deletes old rows in batches on SQLite, and the rollups stay.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from accounts_testkit import admin_token_headers
from api_testkit import Registered, batch, make_report, register, settings_for
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, func, select, text

from api import cli, migrate
from api.app import create_app
from api.db import make_engine, make_session_factory, session_scope
from api.models import Camera, CameraRollup, CountRecord, IntervalReportRecord
from api.services import partitions
from api.services.ingest import AcceptWindow, ingest_batch
from api.services.partitions import RAW_TABLES, Month
from api.settings import Settings
from tests.support.databases import scratch_postgres_database

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
LONG_AGO = (NOW - timedelta(days=500)).replace(minute=0)
"""A month no partition is made ahead for, and past a 400-day retention."""
RECENT = (NOW - timedelta(days=2)).replace(minute=0)
POSTGRES = pytest.param("postgresql", marks=pytest.mark.postgres)


@pytest.fixture
def url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A fresh database at the newest schema, of the parametrized kind."""
    if request.param == "sqlite":
        sqlite_url = f"sqlite:///{tmp_path / 'tally.db'}"
        migrate.upgrade(sqlite_url)
        yield sqlite_url
        return
    with scratch_postgres_database("tally_parts", migrated=True) as pg_url:
        yield pg_url


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    engine.dispose()


def post(settings: Settings, reg: Registered, *starts: datetime) -> dict[str, Any]:
    """Post one report per start through a started API (its start-up makes partitions)."""
    app = create_app(settings)
    with TestClient(app) as client:
        reports = [make_report(reg.camera, start) for start in starts]
        response = client.post("/api/v1/reports", json=batch(*reports), headers=reg.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def rows(connection: Connection, table: str) -> int:
    return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


@pytest.mark.parametrize("url", [POSTGRES], indirect=True)
def test_the_api_makes_partitions_ahead_when_it_starts(url: str, engine: Engine) -> None:
    with TestClient(create_app(settings_for(url))):
        pass
    first, last = partitions.upcoming_months(datetime.now(UTC))
    with engine.connect() as connection:
        assert partitions.is_partitioned(connection)
        for table in RAW_TABLES:
            assert set(first.through(last)) <= set(partitions.month_partitions(connection, table))


@pytest.mark.parametrize("url", [POSTGRES], indirect=True)
def test_a_report_of_a_month_without_partition_is_kept_then_moves_into_its_own(
    url: str, engine: Engine
) -> None:
    settings = settings_for(url)
    reg = register(settings)
    assert post(settings, reg, LONG_AGO)["created"] == 1
    with engine.connect() as connection:
        assert rows(connection, "interval_reports_default") == 1
        assert rows(connection, "count_rows_default") == 1
    done = partitions.maintain(engine, settings)
    assert done.moved_from_default == 1
    assert Month.of(LONG_AGO).partition("interval_reports") in done.created
    with engine.connect() as connection:
        assert rows(connection, "interval_reports_default") == 0
        assert rows(connection, Month.of(LONG_AGO).partition("count_rows")) == 1
    again = post(settings, reg, LONG_AGO)
    assert (again["created"], again["duplicates"]) == (0, 1)
    app = create_app(settings)
    with TestClient(app) as client:
        series = client.get(
            "/api/v1/counts/series",
            params={
                "camera": reg.camera,
                "from": LONG_AGO.isoformat(),
                "to": (LONG_AGO + timedelta(hours=1)).isoformat(),
                "bucket": "1min",
            },
            headers=admin_token_headers(app),
        )
    assert series.status_code == 200, series.text
    assert series.json()["total"] == 5


def stored(engine: Engine, camera: str) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            model.__tablename__: connection.execute(
                select(func.count()).select_from(model).where(model.camera_id == camera)
            ).scalar_one()
            for model in (IntervalReportRecord, CountRecord, CameraRollup)
        }


@pytest.mark.parametrize("url", ["sqlite", POSTGRES], indirect=True)
def test_retention_removes_old_raw_rows_and_keeps_the_rollups(url: str, engine: Engine) -> None:
    accepting = settings_for(url)
    reg = register(accepting)
    post(accepting, reg, LONG_AGO, RECENT)
    partitions.maintain(engine, accepting)  # the old month gets its own partition
    before = stored(engine, reg.camera)
    keeping = settings_for(url, ingest_max_age_days=30, raw_retention_days=400)
    done = partitions.maintain(engine, keeping)
    after = stored(engine, reg.camera)
    assert after == before | {"interval_reports": 1, "count_rows": 1}
    if done.partitioned:
        assert Month.of(LONG_AGO).partition("interval_reports") in done.dropped
        assert Month.of(RECENT).partition("interval_reports") not in done.dropped
    else:
        assert done.deleted_reports == 1


@pytest.mark.parametrize("url", ["sqlite", POSTGRES], indirect=True)
def test_old_rows_are_deleted_in_batches(url: str, engine: Engine) -> None:
    settings = settings_for(url)
    reg = register(settings)
    starts = [LONG_AGO + timedelta(minutes=n) for n in range(5)]
    with session_scope(make_session_factory(engine)) as session:
        camera = session.get(Camera, reg.camera)
        window = AcceptWindow.from_settings(settings, datetime.now(UTC))
        reports = [make_report(reg.camera, start) for start in [*starts, RECENT]]
        ingest_batch(session, camera, reports, window)
    cutoff = int((NOW - timedelta(days=400)).timestamp())
    assert partitions.delete_reports_before(engine, cutoff, batch=2) == 5
    assert stored(engine, reg.camera)["count_rows"] == 1


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_the_storage_command_prints_what_it_did(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TALLY_DATABASE_URL", url)
    monkeypatch.setenv("TALLY_RAW_RETENTION_DAYS", "400")
    assert cli.main(["storage"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "partitioned": False,
        "created": [],
        "moved_from_default": 0,
        "dropped": [],
        "deleted_reports": 0,
    }


def test_retention_must_outlast_the_accept_window() -> None:
    with pytest.raises(ValidationError, match="must be more than"):
        Settings(raw_retention_days=30, ingest_max_age_days=30)


@pytest.mark.postgres
def test_the_migration_keeps_every_row_both_ways() -> None:
    with scratch_postgres_database("tally_parts") as url:
        migrate.upgrade(url, "0007")
        settings = settings_for(url)
        reg = register(settings)
        engine = make_engine(url)
        try:
            with session_scope(make_session_factory(engine)) as session:
                camera = session.get(Camera, reg.camera)
                window = AcceptWindow.from_settings(settings, datetime.now(UTC))
                ingest_batch(session, camera, [make_report(reg.camera, RECENT)], window)
            before = stored(engine, reg.camera)
            migrate.upgrade(url)
            with engine.connect() as connection:
                assert partitions.is_partitioned(connection)
                assert rows(connection, Month.of(RECENT).partition("count_rows")) == 1
            assert stored(engine, reg.camera) == before
            migrate.downgrade(url, "0007")
            with engine.connect() as connection:
                assert not partitions.is_partitioned(connection)
            assert stored(engine, reg.camera) == before
        finally:
            engine.dispose()
