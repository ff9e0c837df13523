"""Ingest load: many simulated cameras posting 1-min reports, then a reconnect storm.

    python bench/bench_load.py --backend sqlite --cameras 1000 --minutes 5 --backlog 30
    python bench/bench_load.py --backend postgresql --workers 4

A real `python -m api serve` (or uvicorn with several workers on PostgreSQL) on loopback, a
fresh database, cameras registered through the API's own services, and an asyncio httpx
client per phase: ``steady`` (every camera posts each minute's report) and ``storm`` (every
camera reconnects at once and drains a backlog in batches of 100, as the uplink does).
Prints one JSON object: throughput, p50/p95/p99 latency, error rate, and the database check
(reports lost, duplicates), which must both be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.db import make_engine, make_session_factory, session_scope  # noqa: E402
from api.schemas import CameraIn, LineIn, SiteIn  # noqa: E402
from api.services import registry, tokens  # noqa: E402
from contract import CountRow  # noqa: E402
from contract.examples import full_interval_report  # noqa: E402
from tests.support.databases import migrated_database  # noqa: E402

SECRET = "0LOTe_z9pq-Cx7rnGm1iYech8uVrHhp2grh_pZqAC-k"
UPLINK_BATCH = 100
BASE = datetime(2026, 2, 2, 0, 0, tzinfo=UTC)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh migrated database; PostgreSQL ones are dropped afterwards."""
    with migrated_database(backend, workdir / "load.db", "tally_load") as url:
        yield url


def register(url: str, cameras: int) -> dict[str, str]:
    """camera id -> device token, all in one transaction."""
    engine = make_engine(url)
    issued: dict[str, str] = {}
    try:
        with session_scope(make_session_factory(engine)) as session:
            registry.create_site(session, SiteIn(id="load", name="Load", lat=52.0, lon=5.0))
            for n in range(cameras):
                camera = f"load-{n:05d}"
                registry.register_camera(
                    session,
                    CameraIn(
                        id=camera,
                        site_id="load",
                        interval_seconds=60,
                        lines=[LineIn(name="main", direction_names={"down": "in", "up": "out"})],
                        zones=[],
                    ),
                )
                issued[camera] = tokens.issue_device_token(session, SECRET, camera).token
    finally:
        engine.dispose()
    return issued


@contextmanager
def api_server(url: str, workers: int, workdir: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TALLY_DATABASE_URL": url,
        "TALLY_ENVIRONMENT": "test",
        "TALLY_SECRET_KEY": SECRET,
        "TALLY_INGEST_RATE_LIMIT": "1000000/minute",
        "TALLY_INGEST_MAX_AGE_DAYS": "3650",  # the load's reports are dated February 2026
    }
    args = ["-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
    args += ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    with (workdir / "api.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, *args], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"API did not start; see {workdir / 'api.log'}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def report(camera: str, minute: int) -> dict[str, Any]:
    counts = [
        CountRow(line="main", direction="in", vehicle_class="car", count=minute % 9 + 1),
        CountRow(line="main", direction="out", vehicle_class="truck", count=1),
    ]
    start = BASE + timedelta(minutes=minute)
    return full_interval_report(camera, start, counts, fps=10.0).model_dump(mode="json")


@dataclass
class Phase:
    """Latencies and outcomes of one phase's requests."""

    name: str
    latencies_s: list[float] = field(default_factory=list)
    reports: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1)

        requests = len(ordered)
        return {
            "requests": requests,
            "reports": self.reports,
            "seconds": round(self.seconds, 2),
            "reports_per_s": round(self.reports / self.seconds, 1),
            "requests_per_s": round(requests / self.seconds, 1),
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
            "error_rate": round(self.errors / max(1, requests), 4),
            "statuses": self.statuses,
        }


async def post_until_stored(
    client: httpx.AsyncClient, token: str, reports: list[dict[str, Any]], phase: Phase
) -> None:
    """Post like the uplink: keep a batch until the API has it (retry 429/5xx/transport)."""
    body = json.dumps({"reports": reports})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for attempt in range(20):
        started = time.perf_counter()
        try:
            response = await client.post("/api/v1/reports", content=body, headers=headers)
            status = response.status_code
        except httpx.TransportError:
            status = 0
        phase.latencies_s.append(time.perf_counter() - started)
        phase.statuses[status] = phase.statuses.get(status, 0) + 1
        if status == 200:
            phase.reports += len(reports)
            return
        phase.errors += 1
        await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
    raise RuntimeError("a batch was never accepted")


async def run_phase(
    base: str, name: str, work: list[tuple[str, list[dict[str, Any]]]], concurrency: int
) -> Phase:
    phase = Phase(name)
    limit = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(token: str, reports: list[dict[str, Any]]) -> None:
            async with limit:
                await post_until_stored(client, token, reports, phase)

        started = time.perf_counter()
        await asyncio.gather(*(one(token, reports) for token, reports in work))
        phase.seconds = time.perf_counter() - started
    return phase


def check_database(url: str, expected: int) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            rows = db.execute(text("SELECT COUNT(*) FROM interval_reports")).scalar_one()
            distinct = db.execute(
                text(
                    "SELECT COUNT(DISTINCT camera_id || '/' || interval_start_s) "
                    "FROM interval_reports"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return {
        "expected": expected,
        "stored": rows,
        "lost": expected - distinct,
        "duplicates": rows - distinct,
    }


def run(
    backend: str, cameras: int, minutes: int, backlog: int, workers: int, concurrency: int
) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="tally-load-") as tmp,
        database(backend, Path(tmp)) as url,
    ):
        started = time.perf_counter()
        issued = register(url, cameras)
        setup_s = time.perf_counter() - started
        with api_server(url, workers, Path(tmp)) as base:
            phases = []
            for minute in range(minutes):
                work = [(token, [report(cam, minute)]) for cam, token in issued.items()]
                phases.append(asyncio.run(run_phase(base, "steady", work, concurrency)))
            storm: list[tuple[str, list[dict[str, Any]]]] = []
            for cam, token in issued.items():
                pending = [report(cam, minutes + m) for m in range(backlog)]
                storm += [
                    (token, pending[i : i + UPLINK_BATCH])
                    for i in range(0, len(pending), UPLINK_BATCH)
                ]
            storm_phase = asyncio.run(run_phase(base, "storm", storm, concurrency))
        steady = Phase("steady")
        for phase in phases:
            steady.latencies_s += phase.latencies_s
            steady.reports += phase.reports
            steady.errors += phase.errors
            steady.seconds += phase.seconds
            for status, n in phase.statuses.items():
                steady.statuses[status] = steady.statuses.get(status, 0) + n
        return {
            "backend": backend,
            "uvicorn_workers": workers,
            "cameras": cameras,
            "concurrency": concurrency,
            "register_s": round(setup_s, 2),
            "steady": steady.summary(),
            "storm": storm_phase.summary(),
            "database": check_database(url, cameras * (minutes + backlog)),
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=5, help="steady 1-min reports per camera")
    parser.add_argument("--backlog", type=int, default=30, help="storm reports per camera")
    parser.add_argument("--workers", type=int, default=4, help="uvicorn workers on PostgreSQL")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        workers = 1 if backend == "sqlite" else args.workers
        results.append(
            run(backend, args.cameras, args.minutes, args.backlog, workers, args.concurrency)
        )
    print(json.dumps(results, indent=2))
    return (
        0 if all(r["database"]["lost"] == r["database"]["duplicates"] == 0 for r in results) else 1
    )


if __name__ == "__main__":
    sys.exit(main())
