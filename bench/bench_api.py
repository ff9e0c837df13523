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
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import text

# run as a script from anywhere: the repository root holds the packages
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app
from api.db import session_scope
from api.schemas import CameraIn, LineIn, SiteIn
from api.services import registry, tokens
from api.services.counts import CountFilter, count_series
from api.services.grid import make_grid
from api.settings import Settings
from contract import VEHICLE_CLASSES, CountRow
from contract.examples import full_interval_report
from tests.support.databases import migrated_database

START = datetime(2025, 1, 1, tzinfo=UTC)
CAMERAS_INGEST = 100
CAMERAS_QUERY = 20
BUDGET_S = 2.4 * 3600


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh, migrated database of the given kind, removed afterwards."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        migrated_database(backend, Path(tmp) / "bench.db", "tally_bench") as url,
    ):
        yield url


def settings(url: str) -> Settings:
    return Settings(
        database_url=url,
        environment="test",
        secret_key="Fa71HLlGZLUihSgUANUIilZCVRAsVvghOLYV65uITP4",
        ingest_rate_limit="1000000/minute",
        ingest_max_age_days=3650,  # the bench's reports are dated from January 2025
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
        CountRow(line="main", direction=d, vehicle_class=c, count=(i + 3 * j) % 7)
        for i, d in enumerate(("in", "out"))
        for j, c in enumerate(("car", "truck", "bus"))
    ]
    return full_interval_report(camera, start, counts).model_dump(mode="json")


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


SERIES_SQL = {
    "sqlite": "CREATE TEMP TABLE {name} AS WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL "
    "SELECT i + 1 FROM s WHERE i < {last}) SELECT i FROM s",
    "postgresql": "CREATE TEMP TABLE {name} AS SELECT generate_series(0, {last}) AS i",
}
CAMERA_ID_SQL = {
    "sqlite": "'y-' || printf('%02d', c.i)",
    "postgresql": "'y-' || lpad(c.i::text, 2, '0')",
}
REPORTS_SQL = """
INSERT INTO interval_reports (report_id, camera_id, interval_start_s, interval_seconds, partial,
  coverage, frames_processed, fps, reconnects, stalls, dropped_reports, outbox_backlog, payload,
  payload_sha256, received_at)
SELECT {camera} || '-' || m.i, {camera}, {start} + m.i * 60, 60, false, 1.0, 900, 15.0, 0, 0, 0, 0,
  '{{}}', '', CURRENT_TIMESTAMP
FROM c CROSS JOIN m
"""
COUNTS_SQL = """
INSERT INTO count_rows (camera_id, interval_start_s, line, direction, vehicle_class, count)
SELECT {camera}, {start} + m.i * 60, 'main', CASE m.i % 2 WHEN 0 THEN 'down' ELSE 'up' END,
  CASE (m.i + c.i) % 5 {class_cases} END, (m.i * 7 + c.i) % 13
FROM c CROSS JOIN m
"""
LINE_ROLLUP_SQL = """
INSERT INTO line_rollups (granularity_s, camera_id, bucket_start_s, line, direction, {columns})
SELECT {g}, camera_id, interval_start_s - interval_start_s % {g}, line, direction, {sums}
FROM count_rows GROUP BY camera_id, interval_start_s - interval_start_s % {g}, line, direction
"""
CAMERA_ROLLUP_SQL = """
INSERT INTO camera_rollups (granularity_s, camera_id, bucket_start_s, covered_s, reports, {columns})
SELECT {g}, r.camera_id, r.b, r.covered, r.n, {totals}
FROM (SELECT camera_id, interval_start_s - interval_start_s % {g} AS b,
        SUM(coverage * interval_seconds) AS covered, COUNT(*) AS n
      FROM interval_reports GROUP BY camera_id, interval_start_s - interval_start_s % {g}) r
JOIN (SELECT camera_id, interval_start_s - interval_start_s % {g} AS b, {named_sums}
      FROM count_rows GROUP BY camera_id, interval_start_s - interval_start_s % {g}) k
  ON k.camera_id = r.camera_id AND k.b = r.b
"""


def generate_year(url: str, days: int) -> float:
    """One count row per camera-minute, reports and rollups, all generated inside the database.

    The rollups are built with the same rule ingest applies (sums per UTC bucket), in bulk.
    """
    app = create_app(settings(url))
    with session_scope(app.state.session_factory) as session:
        registry.create_site(session, SiteIn(id="year", name="Year", lat=0, lon=0))
        for n in range(CAMERAS_QUERY):
            camera = CameraIn(id=f"y-{n:02d}", site_id="year", lines=[LineIn(name="main")])
            registry.register_camera(session, camera)
    engine = app.state.session_factory.kw["bind"]
    dialect = engine.dialect.name
    columns = [f"n_{c}" for c in VEHICLE_CLASSES]
    sums = [f"SUM(CASE WHEN vehicle_class = '{c}' THEN count ELSE 0 END)" for c in VEHICLE_CLASSES]
    fill = {
        "camera": CAMERA_ID_SQL[dialect],
        "start": int(START.timestamp()),
        "class_cases": " ".join(f"WHEN {k} THEN '{c}'" for k, c in enumerate(VEHICLE_CLASSES)),
        "columns": ", ".join(columns),
        "sums": ", ".join(sums),
        "totals": ", ".join(f"k.{c}" for c in columns),
        "named_sums": ", ".join(f"{s} AS {c}" for s, c in zip(sums, columns, strict=True)),
    }
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(SERIES_SQL[dialect].format(name="m", last=days * 1440 - 1)))
        conn.execute(text(SERIES_SQL[dialect].format(name="c", last=CAMERAS_QUERY - 1)))
        for template in (REPORTS_SQL, COUNTS_SQL):
            conn.execute(text(template.format(**fill)))
        for g in (900, 3600):
            for template in (LINE_ROLLUP_SQL, CAMERA_ROLLUP_SQL):
                conn.execute(text(template.format(g=g, **fill)))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # what autovacuum does on a live server: statistics and the visibility map
        conn.execute(text("VACUUM ANALYZE" if dialect == "postgresql" else "ANALYZE"))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def p95(timings: list[float]) -> float:
    return sorted(timings)[max(0, round(0.95 * len(timings)) - 1)]


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
    parser.add_argument("--parts", default="ingest,queries", help="which halves to run")
    args = parser.parse_args()
    rows: list[tuple[str, str, float]] = []
    for backend in args.backends.split(","):
        if "ingest" in args.parts:
            with database(backend) as url:
                for key, value in bench_ingest(url, args.live_minutes, args.backlog_hours).items():
                    rows.append((backend, key, value))
        if "queries" in args.parts:
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
        drain = values.get((backend, "backlog_drain_s"))
        if drain is not None:
            speedup = BUDGET_S / drain
            print(f"{backend}: backlog drained in {drain:.0f} s ({speedup:.0f}x inside 2.4 h)")
        for name in ("15min_1cam_30d", "1h_allcams_year") if "queries" in args.parts else ():
            fast, slow = (
                values[(backend, f"{name}_rollup_p95_ms")],
                values[(backend, f"{name}_raw_p95_ms")],
            )
            verdict = "ok" if fast < 200 else "over 200 ms"
            ratio = slow / fast
            timing = f"rollup {fast:.0f} ms, raw {slow:.0f} ms, {ratio:.0f}x"
            print(f"{backend} {name}: {timing}, {verdict}")


if __name__ == "__main__":
    main()
