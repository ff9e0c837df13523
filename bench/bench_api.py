"""API benchmark: ingest throughput and long-range query latency, SQLite and PostgreSQL.

Ingest (through the real app, in process): 100 cameras posting one 1-minute report per request
(live traffic), then a 24-hour backlog of the same 100 cameras (144,000 reports) in batches of
500; the drain time is compared with the 2.4-hour budget.
Queries: a year of 1-minute data for 20 cameras, generated inside the database (one count row
per camera-minute, ~10.5 million rows) with its rollups, then a 15-minute series for one camera
over 30 days and an hourly series for all cameras over a year, each from the rollups and from
the raw rows (the baseline) in the same run.

    python bench/bench_api.py [--days 365] [--backlog-hours 24] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api import migrate  # noqa: E402
from api.app import create_app  # noqa: E402
from api.db import session_scope  # noqa: E402
from api.schemas import CameraIn, LineIn, SiteIn  # noqa: E402
from api.services import registry, tokens  # noqa: E402
from api.services.counts import CountFilter, count_series  # noqa: E402
from api.services.grid import make_grid  # noqa: E402
from api.settings import Settings  # noqa: E402
from contract import VEHICLE_CLASSES, IntervalReport, interval_report_id  # noqa: E402

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
START = datetime(2025, 1, 1, tzinfo=UTC)
CAMERAS_INGEST = 100
CAMERAS_QUERY = 20
BUDGET_S = 2.4 * 3600


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh, migrated database of the given kind, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            migrate.upgrade(url)
            yield url
        return
    name = f"tally_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings(url: str) -> Settings:
    return Settings(
        database_url=url,
        environment="test",
        secret_key="bench-secret-not-for-production",
        ingest_rate_limit="1000000/minute",
        max_body_bytes=64 * 1024 * 1024,
    )


def register_cameras(config: Settings, session_factory: object, count: int) -> dict[str, str]:
    """count cameras on one site; returns camera id -> device token."""
    issued = {}
    with session_scope(session_factory) as session:  # type: ignore[arg-type]
        registry.create_site(session, SiteIn(id="bench", name="Bench", lat=0, lon=0))
        for n in range(count):
            camera = f"cam-{n:03d}"
            registry.register_camera(
                session,
                CameraIn(
                    id=camera,
                    site_id="bench",
                    lines=[LineIn(name="main", direction_names={"down": "in", "up": "out"})],
                ),
            )
            issued[camera] = tokens.issue_device_token(session, config.secret_key, camera).token
    return issued


def report_json(camera: str, start: datetime) -> dict[str, object]:
    """A realistic 1-minute report: 2 directions x 3 classes."""
    counts = [
        {"line": "main", "direction": d, "vehicle_class": c, "count": (i + 3 * j) % 7}
        for i, d in enumerate(("in", "out"))
        for j, c in enumerate(("car", "truck", "bus"))
    ]
    return IntervalReport(
        report_id=interval_report_id(camera, start),
        camera_id=camera,
        interval_start=start,
        interval_seconds=60,
        partial=False,
        coverage=1.0,
        frames_processed=900,
        fps=15.0,
        counts=counts,  # type: ignore[arg-type]
        zones=[],
        health={"reconnects": 0, "dropped_reports": 0},  # type: ignore[arg-type]
    ).model_dump(mode="json")


def bench_ingest(url: str, live_minutes: int, backlog_hours: int) -> dict[str, float]:
    config = settings(url)
    app = create_app(config)
    issued = register_cameras(config, app.state.session_factory, CAMERAS_INGEST)
    results = {}
    with TestClient(app) as client:
        started = time.perf_counter()
        for minute in range(live_minutes):
            for camera, token in issued.items():
                body = {"reports": [report_json(camera, START + timedelta(minutes=minute))]}
                response = client.post(
                    "/api/v1/reports", json=body, headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 200, response.text
        elapsed = time.perf_counter() - started
        results["live_reports_per_s"] = live_minutes * CAMERAS_INGEST / elapsed
        backlog_start = START + timedelta(days=1)
        minutes = backlog_hours * 60
        bodies = [
            (
                camera,
                token,
                [report_json(camera, backlog_start + timedelta(minutes=m)) for m in range(minutes)],
            )
            for camera, token in issued.items()
        ]
        started = time.perf_counter()
        for _camera, token, reports in bodies:
            for i in range(0, len(reports), 500):
                response = client.post(
                    "/api/v1/reports",
                    json={"reports": reports[i : i + 500]},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status_code == 200, response.text
        drain = time.perf_counter() - started
        results["backlog_reports"] = CAMERAS_INGEST * minutes
        results["backlog_drain_s"] = drain
        results["backlog_reports_per_s"] = CAMERAS_INGEST * minutes / drain
    return results


def generate_year(url: str, days: int) -> float:
    """One count row per camera-minute, reports and rollups, all generated inside the database."""
    config = settings(url)
    app = create_app(config)
    with session_scope(app.state.session_factory) as session:
        registry.create_site(session, SiteIn(id="year", name="Year", lat=0, lon=0))
        for n in range(CAMERAS_QUERY):
            registry.register_camera(
                session,
                CameraIn(id=f"y-{n:02d}", site_id="year", lines=[LineIn(name="main")]),
            )
    start_s = int(START.timestamp())
    minutes = days * 1440
    classes = ", ".join(f"'{c}'" for c in VEHICLE_CLASSES)
    engine = app.state.session_factory.kw["bind"]
    started = time.perf_counter()
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    f"CREATE TEMP TABLE m AS WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL "
                    f"SELECT i + 1 FROM s WHERE i < {minutes - 1}) SELECT i FROM s"
                )
            )
            conn.execute(
                text(
                    f"CREATE TEMP TABLE c AS WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL "
                    f"SELECT i + 1 FROM s WHERE i < {CAMERAS_QUERY - 1}) "
                    f"SELECT 'y-' || printf('%02d', i) AS id, i FROM s"
                )
            )
            cls = f"(CASE (m.i + c.i) % 5 {' '.join(f'WHEN {k} THEN {v!r}' for k, v in enumerate(VEHICLE_CLASSES))} END)"
            direction = "(CASE m.i % 2 WHEN 0 THEN 'down' ELSE 'up' END)"
        else:
            conn.execute(
                text(f"CREATE TEMP TABLE m AS SELECT generate_series(0, {minutes - 1}) AS i")
            )
            conn.execute(
                text(
                    f"CREATE TEMP TABLE c AS SELECT 'y-' || lpad(i::text, 2, '0') AS id, i "
                    f"FROM generate_series(0, {CAMERAS_QUERY - 1}) AS i"
                )
            )
            cls = f"(ARRAY[{classes}])[((m.i + c.i) % 5) + 1]"
            direction = "(CASE m.i % 2 WHEN 0 THEN 'down' ELSE 'up' END)"
        t = f"({start_s} + m.i * 60)"
        conn.execute(
            text(
                "INSERT INTO interval_reports (report_id, camera_id, interval_start_s, interval_seconds,"
                " partial, coverage, frames_processed, fps, reconnects, stalls, dropped_reports,"
                " outbox_backlog, payload, payload_sha256, received_at) "
                f"SELECT c.id || '-' || m.i, c.id, {t}, 60, false, 1.0, 900, 15.0, 0, 0, 0, 0, '{{}}', '',"
                " CURRENT_TIMESTAMP FROM c CROSS JOIN m"
            )
        )
        conn.execute(
            text(
                "INSERT INTO count_rows (camera_id, interval_start_s, line, direction, vehicle_class, count) "
                f"SELECT c.id, {t}, 'main', {direction}, {cls}, (m.i * 7 + c.i) % 13 FROM c CROSS JOIN m"
            )
        )
        sums = ", ".join(
            f"SUM(CASE WHEN vehicle_class = '{c}' THEN count ELSE 0 END)" for c in VEHICLE_CLASSES
        )
        columns = ", ".join(f"n_{c}" for c in VEHICLE_CLASSES)
        for g in (900, 3600):
            bucket = f"(interval_start_s - interval_start_s % {g})"
            conn.execute(
                text(
                    f"INSERT INTO line_rollups (granularity_s, camera_id, bucket_start_s, line, direction, {columns}) "
                    f"SELECT {g}, camera_id, {bucket}, line, direction, {sums} FROM count_rows "
                    f"GROUP BY camera_id, {bucket}, line, direction"
                )
            )
            conn.execute(
                text(
                    f"INSERT INTO camera_rollups (granularity_s, camera_id, bucket_start_s, covered_s, reports, {columns}) "
                    f"SELECT {g}, r.camera_id, r.b, r.covered, r.n, {', '.join(f'COALESCE(k.{c}, 0)' for c in columns.split(', '))} "
                    f"FROM (SELECT camera_id, {bucket} AS b, SUM(coverage * interval_seconds) AS covered, COUNT(*) AS n "
                    f"FROM interval_reports GROUP BY camera_id, {bucket}) r LEFT JOIN "
                    f"(SELECT camera_id, {bucket} AS b, {', '.join(f'{s} AS n_{c}' for s, c in zip(sums.split(', '), VEHICLE_CLASSES, strict=True))} "
                    f"FROM count_rows GROUP BY camera_id, {bucket}) k ON k.camera_id = r.camera_id AND k.b = r.b"
                )
            )
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    elapsed = time.perf_counter() - started
    app.state.session_factory.kw["bind"].dispose()
    return elapsed


def p95(timings: list[float]) -> float:
    return sorted(timings)[max(0, int(round(0.95 * len(timings))) - 1)]


def timed(run: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return p95(timings) * 1000


def bench_queries(url: str, days: int, repeats: int) -> dict[str, float]:
    app = create_app(settings(url))
    factory = app.state.session_factory
    utc = ZoneInfo("UTC")
    end = START + timedelta(days=days)
    cameras = tuple(f"y-{n:02d}" for n in range(CAMERAS_QUERY))
    month = make_grid("15min", utc, end - timedelta(days=30), end, None)
    year = make_grid("1h", utc, START, end, None)
    results = {}
    for name, grid, where in (
        ("15min_1cam_30d", month, CountFilter(cameras[:1])),
        ("1h_allcams_year", year, CountFilter(cameras)),
    ):
        for source in ("rollup", "raw"):

            def run(grid=grid, where=where, source=source) -> object:  # type: ignore[no-untyped-def]
                with factory() as session:
                    return count_series(session, grid, where, source=source)

            results[f"{name}_{source}_p95_ms"] = timed(run, repeats if source == "rollup" else 3)
    factory.kw["bind"].dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="days of 1-minute data (queries)")
    parser.add_argument("--backlog-hours", type=int, default=24, help="backlog per camera")
    parser.add_argument("--live-minutes", type=int, default=3, help="minutes of live posting")
    parser.add_argument("--repeats", type=int, default=20, help="query repetitions (rollups)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    rows: list[tuple[str, str, float]] = []
    for backend in args.backends.split(","):
        with database(backend) as url:
            for key, value in bench_ingest(url, args.live_minutes, args.backlog_hours).items():
                rows.append((backend, key, value))
        with database(backend) as url:
            rows.append((backend, f"generate_{args.days}d_s", generate_year(url, args.days)))
            for key, value in bench_queries(url, args.days, args.repeats).items():
                rows.append((backend, key, value))
    print(f"{'backend':<11} {'measure':<34} {'value':>12}")
    for backend, key, value in rows:
        print(f"{backend:<11} {key:<34} {value:>12.1f}")
    print()
    values = {(b, k): v for b, k, v in rows}
    for backend in args.backends.split(","):
        drain = values[(backend, "backlog_drain_s")]
        print(
            f"{backend}: backlog drained in {drain:.0f} s = {BUDGET_S / drain:.0f}x faster than the 2.4 h budget"
        )
        for name in ("15min_1cam_30d", "1h_allcams_year"):
            fast, slow = (
                values[(backend, f"{name}_rollup_p95_ms")],
                values[(backend, f"{name}_raw_p95_ms")],
            )
            verdict = "OK" if fast < 200 else "OVER 200 ms"
            print(
                f"{backend}: {name}: rollup {fast:.0f} ms vs raw {slow:.0f} ms ({slow / fast:.0f}x) {verdict}"
            )


if __name__ == "__main__":
    main()
