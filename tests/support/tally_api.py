"""A real Tally API on loopback, seeded through its own admin and ingest endpoints.

Used by the dashboard browser tests and the dashboard benchmark: `python -m api serve` in a
subprocess on a temporary SQLite file, an admin token from `python -m api create-admin-token`,
planner accounts from `python -m api add-user`, then sites, cameras, device tokens, reports
and heartbeats posted over HTTP like a real deployment would.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from contract import (
    CountRow,
    Health,
    IntervalReport,
    VehicleClass,
    ZoneRow,
    interval_report_id,
)
from tests.support.reports import streaming_heartbeat

SECRET_KEY = "server-tests-Xe4Ko9Wq2Mv7Bn1Ct6Lr3Hy8Ju5Df0Sa"
BATCH = 500
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TallyServer:
    """A running API: its base URL, an admin token, and the environment of its CLI."""

    base_url: str
    admin_token: str
    env: dict[str, str]

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=60,
        )

    def add_user(
        self,
        email: str,
        role: str = "viewer",
        *,
        name: str = "Test planner",
        sites: Sequence[str] = (),
        password: str | None = None,
    ) -> str:
        """`python -m api add-user` on the server's database; returns the password (the one
        given, piped on stdin, or the generated one the command printed)."""
        restriction = [arg for site in sites for arg in ("--site", site)]
        command = ["add-user", "--email", email, "--name", name, "--role", role, *restriction]
        done = subprocess.run(
            [sys.executable, "-m", "api", *command],
            env=self.env,
            input=f"{password}\n" if password is not None else "",
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"add-user failed: {done.stderr.strip()}")
        return password if password is not None else done.stdout.strip()

    @contextmanager
    def log_in(self, email: str, password: str) -> Iterator[httpx.Client]:
        """A client signed in through POST /api/v1/auth/login: it keeps the session cookie
        and sends the session's X-CSRF-Token with every request."""
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            response = client.post(
                "/api/v1/auth/login", json={"email": email, "password": password}
            )
            if response.status_code != 200:
                raise RuntimeError(f"login failed ({response.status_code}): {response.text}")
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
            yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "TALLY_DATABASE_URL": database_url,
        "TALLY_ENVIRONMENT": "test",
        "TALLY_SECRET_KEY": SECRET_KEY,
        "TALLY_INGEST_RATE_LIMIT": "100000/minute",
        "TALLY_INGEST_MAX_AGE_DAYS": "3650",  # seeded histories may be dated long ago
    }


def wait_for_health(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"API server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/api/v1/meta", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"API server did not answer within {START_TIMEOUT_S} s")


@contextmanager
def running_server(
    workdir: Path, database_url: str | None = None, settings: Mapping[str, str] | None = None
) -> Iterator[TallyServer]:
    """`python -m api serve` on ``database_url`` (default a fresh SQLite file in ``workdir``),
    with extra ``TALLY_*`` variables from ``settings``."""
    env = server_env(database_url or f"sqlite:///{workdir / 'tally.sqlite3'}") | dict(
        settings or {}
    )
    cli = [sys.executable, "-m", "api"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
    token = subprocess.run(
        [*cli, "create-admin-token", "--name", "dashboard-tests"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base_url, process)
        yield TallyServer(base_url=base_url, admin_token=token, env=env)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


# --- realistic traffic -------------------------------------------------------------------


def hourly_rate(local_hour: float, scale: float) -> float:
    """Vehicles per hour: a night trough with morning and evening peaks."""
    morning = math.exp(-((local_hour - 8.0) ** 2) / 2.0)
    evening = math.exp(-((local_hour - 17.5) ** 2) / 3.0)
    return scale * (40 + 500 * morning + 420 * evening + 150 * (6 <= local_hour <= 21))


def interval_counts(
    start: datetime, seconds: int, tz: ZoneInfo, scale: float, line: str
) -> list[CountRow]:
    """Deterministic counts of one interval, split by direction and class."""
    local = start.astimezone(tz)
    volume = hourly_rate(local.hour + local.minute / 60, scale) * seconds / 3600
    split = (
        {"northbound": 0.55, "southbound": 0.45}
        if local.hour < 12
        else {
            "northbound": 0.4,
            "southbound": 0.6,
        }
    )
    mix: dict[VehicleClass, float] = {
        "car": 0.84,
        "truck": 0.07,
        "bus": 0.03,
        "motorcycle": 0.02,
        "bicycle": 0.04,
    }
    return [
        CountRow(line=line, direction=direction, vehicle_class=cls, count=round(volume * d * c))
        for direction, d in split.items()
        for cls, c in mix.items()
    ]


def zone_row(volume: int, seconds: int) -> ZoneRow:
    """Congestion that rises with volume: slower, fuller, worse LOS."""
    load = min(1.0, volume / (700 * seconds / 3600))
    density = 5 + 45 * load
    los = "ABCDEF"[min(5, int(density // 9))]
    speed = 55 - 35 * load
    histogram = [0] * 14
    histogram[int(speed // 10)] = max(1, volume)
    return ZoneRow(
        zone="approach",
        mean_vehicles=round(1 + 8 * load, 2),
        max_vehicles=2 + int(12 * load),
        occupancy_time=round(0.1 + 0.8 * load, 3),
        occupancy_area=round(0.05 + 0.4 * load, 3),
        mean_speed_kmh=round(speed, 1),
        p85_speed_kmh=round(speed * 1.2, 1),
        speed_histogram=histogram,
        stopped_share=round(0.5 * load**2, 3),
        queue_vehicles=round(6 * load**2, 2),
        queue_m=round(40 * load**2, 1),
        density_veh_km_lane=round(density, 1),
        los=los,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class SeedCamera:
    """One camera's seeded history: reports every ``seconds`` from ``start`` to ``end``."""

    camera_id: str
    start: datetime
    end: datetime
    seconds: int
    tz: ZoneInfo
    scale: float
    line: str = "main"
    gaps: Sequence[tuple[datetime, datetime]] = ()

    def starts(self) -> Iterator[datetime]:
        moment = self.start
        while moment < self.end:
            if not any(a <= moment < b for a, b in self.gaps):
                yield moment
            moment += timedelta(seconds=self.seconds)

    def report(self, start: datetime) -> IntervalReport:
        counts = interval_counts(start, self.seconds, self.tz, self.scale, self.line)
        return IntervalReport(
            report_id=interval_report_id(self.camera_id, start),
            camera_id=self.camera_id,
            interval_start=start,
            interval_seconds=self.seconds,
            partial=False,
            coverage=1.0,
            frames_processed=self.seconds * 10,
            fps=10.0,
            counts=counts,
            zones=[zone_row(sum(c.count for c in counts), self.seconds)],
            health=Health(reconnects=0, dropped_reports=0),
        )

    def reports(self) -> list[IntervalReport]:
        return [self.report(start) for start in self.starts()]


def register_camera(
    admin: httpx.Client, site_id: str, camera_id: str, seconds: int, line: str = "main"
) -> str:
    """Register a camera with one two-way line and one zone; returns its device token."""
    admin.post(
        "/api/v1/admin/cameras",
        json={
            "id": camera_id,
            "site_id": site_id,
            "interval_seconds": seconds,
            "lines": [
                {"name": line, "direction_names": {"down": "southbound", "up": "northbound"}}
            ],
            "zones": [{"name": "approach", "lanes": 2, "length_m": 40.0}],
        },
    ).raise_for_status()
    response = admin.post(f"/api/v1/admin/cameras/{camera_id}/tokens")
    response.raise_for_status()
    return str(response.json()["token"])


def post_history(base_url: str, token: str, camera: SeedCamera) -> list[IntervalReport]:
    """Post every report in batches, then a heartbeat; returns what was posted."""
    reports = camera.reports()
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as device:
        for first in range(0, len(reports), BATCH):
            body = {"reports": [r.model_dump(mode="json") for r in reports[first : first + BATCH]]}
            device.post("/api/v1/reports", json=body).raise_for_status()
        heartbeat = streaming_heartbeat(camera.camera_id, 1, uptime_s=3600.0, reconnects=1)
        device.post("/api/v1/heartbeat", json=heartbeat.model_dump(mode="json")).raise_for_status()
    return reports


def add_site(
    admin: httpx.Client, site_id: str, name: str, lat: float, lon: float, **extra: object
) -> None:
    body = {"id": site_id, "name": name, "lat": lat, "lon": lon, **extra}
    admin.post("/api/v1/admin/sites", json=body).raise_for_status()
