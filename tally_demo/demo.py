"""``python -m tally_demo``: the whole system on one machine, in one command.

It starts the API on a SQLite file, registers a demo site, camera, device token and an admin
login (printed at start) through the API's own admin CLI, runs one worker (``python -m
detector run``) over the shared four-way intersection clip, with a gate per leg, an
intersection layout, a zone and a ground calibration (``intersection.yaml``), and keeps the
dashboard up until Ctrl-C, so a newcomer sees turning movements, congestion and speeds. Files
replay as fast as the CPU allows: stream time, not wall time, drives the 60-s intervals. Every
part runs as its own process, exactly as in a deployment, and Ctrl-C stops the worker first
(it flushes its open interval) and the API last. Progress is read through the API, signed in
with the demo login, as a planner would read it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import httpx
import yaml

from contract.camera import CameraSetup
from contract.site import ConfigError, load_yaml_model

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = Path("data/video/urban_intersection_640x480.mp4")
DEFAULT_SETUP = Path(__file__).with_name("intersection.yaml")
"""The clip's camera set-up: gates north/east/south/west, their layout, a zone, calibration."""
DEFAULT_MODEL = Path("models/yolo26n_dq.pt")
SITE_ID = "demo-site"
CAMERA_ID = "demo-cam"
DEMO_EMAIL = "demo@tally.invalid"
START_TIMEOUT_S = 60.0
WORKER_STOP_TIMEOUT_S = 20.0
API_STOP_TIMEOUT_S = 10.0
POLL_S = 1.0
LOOK_AHEAD = timedelta(hours=2)
"""A replayed file runs ahead of the wall clock: read that far past now."""


def shared_dir() -> Path:
    """$TALLY_SHARED, else ../shared next to the repository."""
    return Path(os.environ.get("TALLY_SHARED") or REPO_ROOT.parent / "shared")


def site_config(
    clip: Path, model: Path, outbox: Path, token_file: Path, plays: int, setup: dict[str, object]
) -> dict[str, object]:
    """A site config counting ``clip`` with the camera set-up ``setup`` (lines, zones, ...)."""
    camera = {"id": CAMERA_ID, "source": str(clip), "plays": plays, "interval_seconds": 60}
    return {
        "site": SITE_ID,
        "model": {"path": str(model)},
        "cameras": [{**camera, **setup}],
        "uplink": {"token_file": str(token_file), "heartbeat_s": 10},
        "outbox": {"path": str(outbox)},
    }


def read_setup(path: Path) -> dict[str, object]:
    """The camera set-up YAML, checked as the worker will check it (clear error, no traceback)."""
    try:
        setup = load_yaml_model(path, CameraSetup)
    except ConfigError as exc:
        raise DemoError(str(exc)) from exc
    return setup.model_dump(mode="json", exclude_defaults=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(message: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"[tally-demo {stamp}] {message}", flush=True)


@dataclass(frozen=True)
class DemoPaths:
    """Everything the demo writes lives in one folder (never in the repository)."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "tally.db"

    @property
    def config(self) -> Path:
        return self.root / "site.yaml"

    @property
    def token(self) -> Path:
        return self.root / "device-token"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox.db"

    @property
    def login(self) -> Path:
        """The demo login's generated password (the demo's own folder, mode 600)."""
        return self.root / "demo-login"

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"


class Demo:
    """The processes of one demo run and how to stop them in order."""

    def __init__(self, paths: DemoPaths, host: str, port: int) -> None:
        self.paths = paths
        self.base_url = f"http://{host}:{port}"
        self.host = host
        self.port = port
        self.env = {
            **os.environ,
            "TALLY_DATABASE_URL": f"sqlite:///{paths.database}",
            "TALLY_ENVIRONMENT": "development",
            "YOLO_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("TALLY_DEVICE_TOKEN", None)
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.password = ""
        self.started_at = datetime.now(UTC)
        self.planner = httpx.Client(base_url=self.base_url, timeout=10)
        self._logs: list[IO[bytes]] = []

    def admin(self, *args: str) -> str:
        """One `python -m api` admin command; its stdout, or a clear failure."""
        done = subprocess.run(
            [sys.executable, "-m", "api", *args],
            env=self.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise DemoError(f"python -m api {args[0]} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def register(self) -> None:
        """Schema, site, camera, device token and login; skipped when a previous run did it."""
        self.admin("migrate")
        if self.paths.token.exists() and self.paths.login.exists():
            say(f"reusing the demo site, token and login in {self.paths.root}")
            self.password = self.paths.login.read_text(encoding="utf-8").strip()
            return
        self.admin(
            "add-site",
            *("--id", SITE_ID, "--name", "Tally demo intersection", "--road", "Demo crossroads"),
            *("--lat", "52.0907", "--lon", "5.1214", "--public"),
        )
        self.admin(
            "add-camera",
            *("--config", str(self.paths.config), "--camera-id", CAMERA_ID, "--site", SITE_ID),
        )
        token = self.admin("issue-token", "--camera", CAMERA_ID)
        self.paths.token.touch(mode=0o600)
        self.paths.token.write_text(token + "\n", encoding="utf-8")
        self.password = self.admin(
            "add-user", "--email", DEMO_EMAIL, "--name", "Demo planner", "--role", "admin"
        )
        self.paths.login.touch(mode=0o600)
        self.paths.login.write_text(self.password + "\n", encoding="utf-8")
        say(f"registered site {SITE_ID}, camera {CAMERA_ID}, its device token and a login")

    def sign_in(self) -> None:
        """Sign the demo's own reader in with the demo login."""
        response = self.planner.post(
            "/api/v1/auth/login", json={"email": DEMO_EMAIL, "password": self.password}
        )
        if response.status_code != 200:
            raise DemoError(f"the demo login was refused ({response.status_code})")

    def read(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """One planner GET; signs in again when the session has ended."""
        response = self.planner.get(path, params=params)
        if response.status_code == 401:
            self.sign_in()
            response = self.planner.get(path, params=params)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def delivered(self) -> Delivered:
        """What the API reports for the demo camera since this run started: 1-minute count
        buckets (one per 60-s interval) and the turning movements through the intersection."""
        window = {
            "camera": CAMERA_ID,
            "from": (self.started_at - timedelta(minutes=1)).isoformat(),
            "to": (datetime.now(UTC) + LOOK_AHEAD).isoformat(),
        }
        try:
            counts = self.read("/api/v1/counts/series", {**window, "bucket": "1min"})
            movements = self.read("/api/v1/movements/tmc", window)
        except (httpx.HTTPError, DemoError):
            return Delivered(0, 0, 0, None)
        covered = [b["start"] for b in counts["buckets"] if b["coverage"] > 0]
        latest = datetime.fromisoformat(covered[-1]).astimezone(UTC) if covered else None
        turned = int(movements["intersection"]["total"] or 0)
        return Delivered(len(covered), int(counts["total"] or 0), turned, latest)

    def dashboard_url(self, page: str = "intersection", **extra: str) -> str:
        """A dashboard page on the days the replay fills (the demo site keeps UTC time)."""
        days = {
            "from": f"{self.started_at:%Y-%m-%d}",
            "to": f"{self.started_at + LOOK_AHEAD:%Y-%m-%d}",
        }
        query = urlencode({"page": page, "site": SITE_ID, **days, **extra})
        return f"{self.base_url}/?{query}"

    def spawn(self, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
        """A child in its own session: Ctrl-C reaches the demo only, which stops it in order."""
        log = self.paths.log(name).open("ab")
        self._logs.append(log)
        return subprocess.Popen(
            [sys.executable, *args],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_api(self) -> None:
        self.api = self.spawn(
            "api",
            ["-m", "api", "serve", "--no-migrate", "--host", self.host, "--port", str(self.port)],
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.api.poll() is not None:
                raise DemoError(f"the API exited ({self.api.returncode}); see {self.log('api')}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise DemoError(f"the API did not answer within {START_TIMEOUT_S:.0f} s")

    def start_worker(self) -> None:
        self.worker = self.spawn(
            "worker",
            [
                "-m",
                "detector",
                "run",
                "--config",
                str(self.paths.config),
                "--api-url",
                self.base_url,
            ],
        )

    def log(self, name: str) -> Path:
        return self.paths.log(name)

    def stop_worker(self) -> None:
        """The worker first: it closes its open interval and delivers it."""
        stop(self.worker, WORKER_STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Worker (if still running), then the API."""
        self.stop_worker()
        stop(self.api, API_STOP_TIMEOUT_S)
        self.planner.close()
        for log in self._logs:
            log.close()


def stop(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL when it does not end in time."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class DemoError(Exception):
    """A step of the demo failed; the message says which and where its log is."""


@dataclass(frozen=True)
class Delivered:
    """What the API reports for the demo camera."""

    reports: int
    crossings: int
    movements: int
    latest: datetime | None

    def describe(self) -> str:
        latest = f", latest interval {self.latest:%H:%M} UTC" if self.latest else ""
        return (
            f"reports delivered: {self.reports}, line crossings: {self.crossings},"
            f" vehicles through the intersection: {self.movements}{latest}"
        )


def watch(demo: Demo) -> None:
    """Print progress until the worker ends, then keep serving until interrupted."""
    assert demo.worker is not None
    assert demo.api is not None
    shown = demo.delivered()
    worker_running = True
    while True:
        time.sleep(POLL_S)
        now = demo.delivered()
        if now != shown:
            say(now.describe())
            shown = now
        if demo.api.poll() is not None:
            raise DemoError(f"the API exited ({demo.api.returncode}); see {demo.log('api')}")
        if worker_running and demo.worker.poll() is not None:
            worker_running = False
            code = demo.worker.returncode
            outcome = "finished the clip" if code == 0 else f"exited with {code}"
            say(f"worker {outcome}; {demo.delivered().describe()}")
            say(f"dashboard still at {demo.dashboard_url()} — press Ctrl-C to stop")


def build_parser() -> argparse.ArgumentParser:
    shared = shared_dir()
    parser = argparse.ArgumentParser(
        prog="python -m tally_demo",
        description="API on SQLite + dashboard + one worker on a real clip, until Ctrl-C.",
    )
    parser.add_argument("--clip", type=Path, default=shared / DEFAULT_CLIP, help="video file")
    parser.add_argument(
        "--setup",
        type=Path,
        default=DEFAULT_SETUP,
        help="the clip's camera set-up YAML: lines (gates), zones, calibration, intersection",
    )
    parser.add_argument("--model", type=Path, default=shared / DEFAULT_MODEL, help="YOLO weights")
    parser.add_argument("--host", default="127.0.0.1", help="API bind address")
    parser.add_argument("--port", type=int, default=8000, help="API port (0: any free port)")
    parser.add_argument(
        "--data-dir", type=Path, help="where the database, outbox and logs go (default: temp)"
    )
    parser.add_argument(
        "--plays",
        type=int,
        default=10,
        help="times the clip is replayed on one running clock, so whole minutes fill the "
        "dashboard (0: forever; default 10)",
    )
    return parser


def prepare(args: argparse.Namespace) -> Demo:
    for what, path in (("clip", args.clip), ("model", args.model)):
        if not path.is_file():
            raise DemoError(f"{what} not found: {path} (set --{what} or TALLY_SHARED)")
    setup = read_setup(args.setup)
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="tally-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    paths = DemoPaths(root.resolve())
    config = site_config(
        args.clip.resolve(), args.model.resolve(), paths.outbox, paths.token, args.plays, setup
    )
    paths.config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return Demo(paths, args.host, args.port or free_port())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
    demo: Demo | None = None
    final = Delivered(0, 0, 0, None)
    try:
        demo = prepare(args)
        say(f"data folder {demo.paths.root} (database, outbox, logs)")
        demo.register()
        demo.start_api()
        demo.sign_in()
        say(f"API       {demo.base_url}/api/v1/meta   (docs: {demo.base_url}/docs)")
        say(f"dashboard {demo.dashboard_url()}   (turning movements)")
        say(f"          {demo.dashboard_url('site', bucket='1min')}   (congestion, speeds)")
        say(f"register  {demo.base_url}/register.html   (public: what each camera sends)")
        say(f"login     {DEMO_EMAIL}   password {demo.password}   (role admin)")
        demo.start_worker()
        say(
            f"worker counting {args.clip.name} (60-s intervals on stream time; log: "
            f"{demo.log('worker')})"
        )
        watch(demo)
    except KeyboardInterrupt:
        say("stopping: worker first (it flushes its last interval), then the API")
    except DemoError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        if demo is not None:
            demo.stop_worker()
            final = demo.delivered()
            demo.stop()
    say(f"stopped cleanly; {final.describe()}")
    return 0
