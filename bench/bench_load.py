"""Ingest load: many simulated cameras posting 1-min reports, then a reconnect storm.

    python bench/bench_load.py --backend sqlite --cameras 1000 --minutes 5 --backlog 30
    python bench/bench_load.py --backend postgresql --workers 2 --cameras 1000
    python bench/bench_load.py --backend postgresql --workers 2 --cameras 100 --minutes 1 \
        --backlog 1440                     # the 24-hour backlog of 100 cameras

A real uvicorn (several workers on PostgreSQL) on loopback, a fresh database, cameras
registered through the API's own services, and an asyncio HTTP/1.1 keep-alive client (h11:
httpx's own parser, without httpx's per-request cost, which on 2 cores outweighed the server
under test) per phase: ``steady`` (every camera posts each minute's report, one report per
request) and ``storm`` (every camera reconnects at once and drains a backlog in batches of
100, as the uplink does). The same load runs against the baseline too, the API of an older
commit (`--baseline`, default the ingest path before its rework) extracted with `git archive`
and given its own database, so old and new are measured in one run on one machine.
Prints a JSON list, one object per backend: throughput, p50/p95/p99 latency, error rate, the
database check (reports lost, duplicates: both must be 0), and with a baseline its figures
(`baseline`) and new / old ratios (`speedup`).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h11
import httpx
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.db import make_engine, make_session_factory, session_scope  # noqa: E402
from api.schemas import CameraIn, LineIn, SiteIn  # noqa: E402
from api.services import registry, tokens  # noqa: E402
from contract import CountRow  # noqa: E402
from contract.examples import full_interval_report  # noqa: E402
from tests.support.databases import scratch_postgres_database  # noqa: E402

SECRET = "0LOTe_z9pq-Cx7rnGm1iYech8uVrHhp2grh_pZqAC-k"
UPLINK_BATCH = 100
BASE = datetime(2026, 2, 2, 0, 0, tzinfo=UTC)
BASELINE_REF = "321b1fb"
"""The last commit before the ingest rework of issue 12: the old path the new one is measured
against."""


@dataclass(frozen=True)
class Code:
    """A tree of Tally whose API the load runs against: this checkout or a baseline commit."""

    name: str
    root: Path

    def python(self, script: str, *args: str) -> str:
        """Run `script` with this tree's packages first on the path; its stdout."""
        env = {**os.environ, "PYTHONPATH": str(self.root)}
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=self.root,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout


CURRENT = Code("current", REPO)


@contextmanager
def baseline_code(ref: str, workdir: Path) -> Iterator[Code]:
    """The tree of commit `ref`, extracted (not checked out: the working tree stays as it is)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref], check=True, stdout=subprocess.PIPE
    )
    root = workdir / "baseline"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    yield Code(f"baseline {ref}", root)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def database(backend: str, workdir: Path, code: Code = CURRENT) -> Iterator[str]:
    """A fresh database migrated by `code`'s own migrations; PostgreSQL ones are dropped
    afterwards."""
    migrate = "import sys; from api import migrate; migrate.upgrade(sys.argv[1])"
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'load.db'}"
        code.python(migrate, url)
        yield url
        return
    with scratch_postgres_database("tally_load") as url:
        code.python(migrate, url)
        yield url


def register_with(code: Code, url: str, cameras: int) -> dict[str, str]:
    """`register` as `code` has it (its models are the ones its database has)."""
    script = (
        "import json, sys; from bench.bench_load import register; "
        "json.dump(register(sys.argv[1], int(sys.argv[2])), sys.stdout)"
    )
    issued: dict[str, str] = json.loads(code.python(script, url, str(cameras)))
    return issued


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


@dataclass(frozen=True)
class Served:
    """A running API: its URL, its process (uvicorn's workers are its children) and database."""

    base: str
    pid: int
    database_url: str

    def cpu_s(self) -> tuple[float, float]:
        """CPU seconds used so far by the API's processes and by the database server's
        backends for this database (0 on SQLite): what a phase costs, however busy the
        machine's other users keep it."""
        processes = list(proc_stats())
        api, todo = 0.0, [self.pid]
        while todo:
            parent = todo.pop()
            for pid, ppid, _, seconds in processes:
                if pid == parent:
                    api += seconds
                if ppid == parent:
                    todo.append(pid)
        name = self.database_url.rsplit("/", 1)[-1]
        database = sum(
            seconds
            for _, _, cmdline, seconds in processes
            if self.database_url.startswith("postgresql") and f" {name} " in cmdline
        )
        return api, database


def proc_stats() -> Iterator[tuple[int, int, str, float]]:
    """(pid, parent pid, command line, CPU seconds) of every process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        yield int(entry.name), int(fields[1]), cmdline, (int(fields[11]) + int(fields[12])) / tick


@contextmanager
def api_server(url: str, workers: int, workdir: Path, code: Code = CURRENT) -> Iterator[Served]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(code.root),
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
            [sys.executable, *args], env=env, cwd=code.root, stdout=log, stderr=subprocess.STDOUT
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
        yield Served(base, process.pid, url)
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
    api_cpu_s: float = 0.0
    database_cpu_s: float = 0.0

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
            "api_cpu_ms_per_report": round(self.api_cpu_s * 1000 / max(1, self.reports), 3),
            "database_cpu_ms_per_report": round(
                self.database_cpu_s * 1000 / max(1, self.reports), 3
            ),
        }


class Connections:
    """Keep-alive HTTP/1.1 connections to one server, each used by one request at a time (as
    many open as requests were in flight at once)."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection]]
        self.idle = asyncio.Queue()

    async def post(self, path: str, body: bytes, headers: list[tuple[str, str]]) -> int:
        """The response status; 0 when the connection failed (it is not reused)."""
        if not self.idle.empty():
            reader, writer, conn = self.idle.get_nowait()
        else:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                return 0
            conn = h11.Connection(h11.CLIENT)
        try:
            status = await self.exchange(reader, writer, conn, path, body, headers)
        except (OSError, h11.ProtocolError, asyncio.IncompleteReadError):
            writer.close()
            return 0
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            self.idle.put_nowait((reader, writer, conn))
        else:
            writer.close()
        return status

    async def exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: h11.Connection,
        path: str,
        body: bytes,
        headers: list[tuple[str, str]],
    ) -> int:
        host = ("Host", f"{self.host}:{self.port}")
        length = ("Content-Length", str(len(body)))
        request = h11.Request(method="POST", target=path, headers=[host, length, *headers])
        writer.write(conn.send(request) + conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        status = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data:
                    raise asyncio.IncompleteReadError(b"", None)
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                return status

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait()[1].close()


async def post_until_stored(
    client: Connections, token: str, reports: list[dict[str, Any]], phase: Phase
) -> None:
    """Post like the uplink: keep a batch until the API has it (retry 429/5xx/transport)."""
    body = json.dumps({"reports": reports}).encode()
    headers = [("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")]
    for attempt in range(20):
        started = time.perf_counter()
        status = await client.post("/api/v1/reports", body, headers)
        phase.latencies_s.append(time.perf_counter() - started)
        phase.statuses[status] = phase.statuses.get(status, 0) + 1
        if status == 200:
            phase.reports += len(reports)
            return
        phase.errors += 1
        await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
    raise RuntimeError("a batch was never accepted")


def measured_phase(
    served: Served, name: str, work: list[tuple[str, list[dict[str, Any]]]], concurrency: int
) -> Phase:
    """`run_phase`, with the CPU the API and the database spent on it."""
    api_before, database_before = served.cpu_s()
    phase = asyncio.run(run_phase(served.base, name, work, concurrency))
    api_after, database_after = served.cpu_s()
    phase.api_cpu_s, phase.database_cpu_s = api_after - api_before, database_after - database_before
    return phase


async def run_phase(
    base: str, name: str, work: list[tuple[str, list[dict[str, Any]]]], concurrency: int
) -> Phase:
    phase = Phase(name)
    client = Connections(base)
    limit = asyncio.Semaphore(concurrency)

    async def one(token: str, reports: list[dict[str, Any]]) -> None:
        async with limit:
            await post_until_stored(client, token, reports, phase)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one(token, reports) for token, reports in work))
        phase.seconds = time.perf_counter() - started
    finally:
        client.close()
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
    backend: str,
    cameras: int,
    minutes: int,
    backlog: int,
    workers: int,
    concurrency: int,
    code: Code = CURRENT,
) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="tally-load-") as tmp,
        database(backend, Path(tmp), code) as url,
    ):
        started = time.perf_counter()
        issued = register_with(code, url, cameras)
        setup_s = time.perf_counter() - started
        with api_server(url, workers, Path(tmp), code) as served:
            phases = []
            for minute in range(minutes):
                work = [(token, [report(cam, minute)]) for cam, token in issued.items()]
                phases.append(measured_phase(served, "steady", work, concurrency))
            storm: list[tuple[str, list[dict[str, Any]]]] = []
            for cam, token in issued.items():
                pending = [report(cam, minutes + m) for m in range(backlog)]
                storm += [
                    (token, pending[i : i + UPLINK_BATCH])
                    for i in range(0, len(pending), UPLINK_BATCH)
                ]
            storm_phase = measured_phase(served, "storm", storm, concurrency)
        steady = Phase("steady")
        for phase in phases:
            steady.latencies_s += phase.latencies_s
            steady.reports += phase.reports
            steady.errors += phase.errors
            steady.seconds += phase.seconds
            steady.api_cpu_s += phase.api_cpu_s
            steady.database_cpu_s += phase.database_cpu_s
            for status, n in phase.statuses.items():
                steady.statuses[status] = steady.statuses.get(status, 0) + n
        return {
            "code": code.name,
            "backend": backend,
            "uvicorn_workers": workers,
            "cameras": cameras,
            "concurrency": concurrency,
            "register_s": round(setup_s, 2),
            "steady": steady.summary(),
            "storm": storm_phase.summary(),
            "database": check_database(url, cameras * (minutes + backlog)),
        }


def speedup(new: dict[str, Any], old: dict[str, Any]) -> dict[str, float]:
    """New over old: throughput ratios (higher is better), p99 and CPU-per-report ratios
    (lower is better)."""
    figures = ("reports_per_s", "p99_ms", "api_cpu_ms_per_report", "database_cpu_ms_per_report")
    return {
        f"{phase}_{figure}": round(new[phase][figure] / max(old[phase][figure], 1e-9), 2)
        for phase in ("steady", "storm")
        for figure in figures
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=5, help="steady 1-min reports per camera")
    parser.add_argument("--backlog", type=int, default=30, help="storm reports per camera")
    parser.add_argument("--workers", type=int, default=4, help="uvicorn workers on PostgreSQL")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument(
        "--baseline",
        default=BASELINE_REF,
        metavar="REF",
        help=f"git commit whose API is measured too (default {BASELINE_REF}; 'none': skip)",
    )
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="tally-baseline-") as tmp,
        optional_baseline(args.baseline, Path(tmp)) as baseline,
    ):
        for backend in backends:
            workers = 1 if backend == "sqlite" else args.workers
            load = (backend, args.cameras, args.minutes, args.backlog, workers, args.concurrency)
            old = run(*load, code=baseline) if baseline is not None else None
            result = run(*load)
            if old is not None:
                result |= {"baseline": old, "speedup": speedup(result, old)}
            results.append(result)
    print(json.dumps(results, indent=2))
    checks = [r["database"] for r in results] + [
        r["baseline"]["database"] for r in results if "baseline" in r
    ]
    return 0 if all(c["lost"] == c["duplicates"] == 0 for c in checks) else 1


@contextmanager
def optional_baseline(ref: str, workdir: Path) -> Iterator[Code | None]:
    """The baseline tree of `ref`, or None for 'none'."""
    if ref == "none":
        yield None
        return
    with baseline_code(ref, workdir) as code:
        yield code


if __name__ == "__main__":
    sys.exit(main())
