"""Open-data counts feed benchmark: the issue #9 case, 3 months of a 32-line camera at 1 h.

The camera reports hourly (so only the hourly rollup is seeded, 320 keys x 2,160 hours =
691,200 rollup rows, folded through RollupDelta as ingest would). Each request goes through
the ASGI app in process, once timed and once under tracemalloc (peak of Python allocations);
the body is counted, never kept.

    python bench/bench_open_data.py [--days 90] [--fit-days 26] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

# run as a script from anywhere: the repository root holds the packages
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app
from api.db import make_engine, make_session_factory, session_scope
from api.schemas import CameraIn, LineIn, SiteIn
from api.services import registry
from api.services.rollups import RollupDelta
from api.settings import Settings
from contract import VEHICLE_CLASSES, IntervalReport, interval_report_id
from tests.support.asgi import download
from tests.support.databases import migrated_database

LINES = 32
SECRET = "bench-open-data-secret-4Hq9Zx2Lw7Nv5Rc8Tb1Ym6Kd3Gs0Jf"


def seed(url: str, days: int) -> tuple[str, datetime]:
    """A public site whose camera has `days` of hourly reports up to the last full hour."""
    lines = [
        LineIn(name=f"l{n:02d}", direction_names={"up": "northbound", "down": "southbound"})
        for n in range(LINES)
    ]
    keys = [
        (x.name, d, c) for x in lines for d in ("northbound", "southbound") for c in VEHICLE_CLASSES
    ]
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    engine = make_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            registry.create_site(
                session, SiteIn(id="bench", name="Bench", lat=1, lon=2, public=True)
            )
            registry.register_camera(
                session, CameraIn(id="cam", site_id="bench", interval_seconds=3600, lines=lines)
            )
            delta = RollupDelta()
            for n in range(days * 24):
                start = end - timedelta(hours=days * 24 - n)
                delta.add(
                    IntervalReport(
                        report_id=interval_report_id("cam", start),
                        camera_id="cam",
                        interval_start=start,
                        interval_seconds=3600,
                        partial=False,
                        coverage=1.0,
                        frames_processed=54000,
                        fps=15.0,
                        counts=[
                            {
                                "line": x,
                                "direction": d,
                                "vehicle_class": c,
                                "count": 1 + (n + i) % 90,
                            }
                            for i, (x, d, c) in enumerate(keys)
                        ],
                        zones=[],
                        health={"reconnects": 0, "dropped_reports": 0},
                    )
                )
            delta.apply(session)
    finally:
        engine.dispose()
    return "bench", end


def measure(app: Any, site: str, end: datetime, days: int) -> None:
    start = end - timedelta(days=days)
    query = f"granularity=1h&from={start:%Y-%m-%dT%H:%M:%SZ}&to={end:%Y-%m-%dT%H:%M:%SZ}"
    path = f"/api/v1/open/sites/{site}/counts.json"
    began = time.perf_counter()
    status, size = anyio.run(download, app, path, query)
    elapsed = time.perf_counter() - began
    tracemalloc.start()
    anyio.run(download, app, path, query)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{days:>3} days at 1h: {status}, {size / 1e6:7.1f} MB in {elapsed:6.2f} s,"
        f" peak Python allocations {peak / 1e6:7.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--fit-days", type=int, default=26)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        migrated_database(args.backend, Path(tmp) / "bench.db", "tally_bench") as url,
    ):
        began = time.perf_counter()
        site, end = seed(url, args.days)
        seeded = time.perf_counter() - began
        print(f"seeded {args.days} days of a {LINES}-line camera in {seeded:.1f} s")
        app = create_app(Settings(database_url=url, environment="test", secret_key=SECRET))
        measure(app, site, end, args.days)
        measure(app, site, end, args.fit_days)


if __name__ == "__main__":
    main()
