"""Real processes on loopback for the fault tests: the API as `python -m api serve`, a
migrated SQLite or PostgreSQL database per test, a registered camera and its device token."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from api import migrate
from api.db import make_engine, make_session_factory, session_scope
from api.schemas import CameraIn, LineIn, SiteIn
from api.services import registry, tokens
from tests.support.databases import scratch_postgres_database
from tests.support.tally_api import free_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "ZFH11a8RwVOUPtlEW8uMeihhMnK_iAUtsd94iZnZXWE"
START_TIMEOUT_S = 30.0


@dataclass
class ApiProcess:
    """`python -m api serve` that a test can kill, stop and start again on the same port."""

    database_url: str
    workdir: Path
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TALLY_DATABASE_URL": self.database_url,
            "TALLY_ENVIRONMENT": "test",
            "TALLY_SECRET_KEY": SECRET,
            "TALLY_INGEST_RATE_LIMIT": "1000000/minute",
            "TALLY_AUTH_FAILURE_RATE_LIMIT": "1000000/minute",
            "TALLY_INGEST_MAX_AGE_DAYS": "3650",  # the fault reports are dated January 2026
        }

    def start(self) -> ApiProcess:
        """Start and wait until /healthz answers 200."""
        log = (self.workdir / f"api-{self.port}.log").open("ab")
        if self.workers == 1:
            args = ["-m", "api", "serve", "--no-migrate", "--port", str(self.port)]
            args += ["--log-level", "warning"]
        else:  # several processes need an import string: uvicorn's factory mode
            args = ["-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(self.port)]
            args += ["--workers", str(self.workers), "--log-level", "warning"]
        self.process = subprocess.Popen(
            [sys.executable, *args], env=self.env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"API exited with {self.process.returncode}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"API did not answer within {START_TIMEOUT_S} s")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass(frozen=True)
class Camera:
    id: str
    token: str


def register_camera(database_url: str, camera_id: str | None = None) -> Camera:
    """A site and a camera with line 'north' (southbound/northbound) and its device token."""
    camera_id = camera_id or f"cam-{uuid.uuid4().hex[:8]}"
    engine = make_engine(database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            site = f"site-{camera_id}"
            registry.create_site(session, SiteIn(id=site, name=site, lat=52.0, lon=5.0))
            registry.register_camera(
                session,
                CameraIn(
                    id=camera_id,
                    site_id=site,
                    interval_seconds=60,
                    lines=[
                        LineIn(
                            name="north", direction_names={"down": "southbound", "up": "northbound"}
                        )
                    ],
                    zones=[],
                ),
            )
            issued = tokens.issue_device_token(session, SECRET, camera_id)
    finally:
        engine.dispose()
    return Camera(camera_id, issued.token)


def stored(database_url: str, camera_id: str) -> tuple[list[str], int]:
    """Report ids in the database (with repeats, if any) and the total of their counts."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            ids = [
                row[0]
                for row in db.execute(
                    text("SELECT report_id FROM interval_reports WHERE camera_id = :c"),
                    {"c": camera_id},
                )
            ]
            total = db.execute(
                text("SELECT COALESCE(SUM(count), 0) FROM count_rows WHERE camera_id = :c"),
                {"c": camera_id},
            ).scalar_one()
    finally:
        engine.dispose()
    return ids, int(total)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tally.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh migrated database on the shared server, dropped afterwards."""
    with scratch_postgres_database("tally_fault", migrated=True) as url:
        yield url


@pytest.fixture
def api_on(tmp_path: Path) -> Iterator[list[ApiProcess]]:
    """Collects the API processes a test starts and stops them all at the end."""
    started: list[ApiProcess] = []
    yield started
    for api in started:
        api.stop(signal.SIGKILL)
