"""One worker process, two live cameras, one API: real processes on loopback, end to end.

`python -m api serve` and `python -m detector run` run as subprocesses; two local MJPEG cameras
serve synthetic moving rectangles. The site config lists both cameras, each with its own count
line and device token file, so the test shows that one process shares one model across its
streams, delivers each camera's reports under that camera's own token, reports each stream's
health separately (a dead camera shows as reconnecting while the other keeps streaming), and
on SIGTERM closes the open intervals as partial reports and delivers them before exiting.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import yaml

from tests.conftest import MODEL
from tests.support.mjpeg import MjpegServer
from tests.support.tally_api import TallyServer, add_site, register_camera, running_server
from tests.support.worker_process import eventually, running_worker

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not MODEL.is_file(), reason=f"offline model missing: {MODEL}"),
]

SITE = "two-cams"
LINES = {
    "north-cam": ("north-line", ((0.0, 0.5), (1.0, 0.5))),
    "south-cam": ("south-line", ((0.0, 0.45), (1.0, 0.55))),
}
"""Each camera's own count line (name, relative end points). Both lines span the frame, so
both cameras analyse the whole frame at one inference size: the detector keeps one compiled
model per input size, and with one size a shared detector loads exactly one model."""
INTERVAL_S = 10
HEARTBEAT_S = 5.0
CAMERA_FPS = 8.0
MODEL_LOADED = f"model {MODEL.name} loaded"
REFUSED_TOKEN = "refused this device's token"


def moving_rectangles(index: int, width: int = 160, height: int = 120) -> bytes:
    """A grey road with two dark 'vehicles' sliding down it; in memory only (tests may)."""
    image = np.full((height, width, 3), 110, dtype=np.uint8)
    for lane, speed in ((0, 3), (1, 5)):
        top = (index * speed) % (height + 30) - 30
        x1 = 20 + lane * 70
        cv2.rectangle(image, (x1, max(0, top)), (x1 + 40, max(0, top + 28)), (40, 40, 60), -1)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return bytes(encoded.tobytes())


def assert_one_model_and_no_refused_token(log: str) -> None:
    """One model load for both streams; the API never refused a camera's token (401/403)."""
    loads = [line for line in log.splitlines() if MODEL_LOADED in line]
    assert len(loads) == 1, loads
    refusals = [line for line in log.splitlines() if REFUSED_TOKEN in line]
    assert not refusals, refusals


def site_config(workdir: Path, cameras: dict[str, MjpegServer]) -> Path:
    """The site YAML: both cameras, each with its own line and token file."""
    config: dict[str, Any] = {
        "site": SITE,
        "model": {"path": str(MODEL)},
        "cameras": [
            {
                "id": camera_id,
                "source": server.url(),
                "lines": [
                    {
                        "name": LINES[camera_id][0],
                        "points": [list(point) for point in LINES[camera_id][1]],
                        "direction_names": {"down": "southbound", "up": "northbound"},
                    }
                ],
                "interval_seconds": INTERVAL_S,
                "token_file": str(workdir / f"{camera_id}.token"),
                "max_detect_fps": 4,
            }
            for camera_id, server in cameras.items()
        ],
        "uplink": {"heartbeat_s": HEARTBEAT_S, "timeout_s": 5},
        "outbox": {"path": str(workdir / "outbox.db")},
    }
    path = workdir / "site.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def register_site(server: TallyServer, workdir: Path) -> None:
    """One site, two cameras with their own line, one device token file per camera."""
    with server.admin() as admin:
        add_site(admin, SITE, "Two cameras", 51.5, -0.12)
        for camera_id, (line, _) in LINES.items():
            token = register_camera(admin, SITE, camera_id, INTERVAL_S, line=line)
            (workdir / f"{camera_id}.token").write_text(token + "\n", encoding="utf-8")


def reports(database: Path) -> dict[str, list[tuple[str, int, bool]]]:
    """Stored reports per camera, oldest first: (report id, interval start (epoch s), partial)."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT camera_id, report_id, interval_start_s, partial FROM interval_reports "
            "ORDER BY interval_start_s"
        ).fetchall()
    found: dict[str, list[tuple[str, int, bool]]] = {camera_id: [] for camera_id in LINES}
    for camera_id, report_id, start, partial in rows:
        found.setdefault(camera_id, []).append((report_id, int(start), bool(partial)))
    return found


def stream_health(admin: httpx.Client) -> dict[str, dict[str, Any]]:
    """Per camera: last_seen_at, heartbeat received_at and its one stream's state."""
    response = admin.get("/api/v1/devices/health", params={"site": SITE, "days": 1})
    assert response.status_code == 200, response.text
    health: dict[str, dict[str, Any]] = {}
    for camera in response.json()["cameras"]:
        beat = camera["last_heartbeat"]
        if beat is None:
            continue
        (stream,) = beat["streams"]
        health[camera["camera"]] = {
            "last_seen_at": camera["last_seen_at"],
            "received_at": beat["received_at"],
            "stream_camera": stream["camera_id"],
            "state": stream["state"],
            "reconnects": stream["reconnects"],
        }
    return health


def outbox_rows(workdir: Path, camera_id: str) -> dict[str, set[str]]:
    """Report ids of each table of a camera's outbox (the worker has exited)."""
    with contextlib.closing(sqlite3.connect(workdir / f"outbox-{camera_id}.db")) as db:
        return {
            table: {row[0] for row in db.execute(f"SELECT report_id FROM {table}")}  # noqa: S608
            for table in ("pending", "delivered", "dead_letter")
        }


def test_one_worker_two_cameras_shared_model_separate_tokens_and_health(tmp_path: Path) -> None:
    cameras = {
        camera_id: MjpegServer(fps=CAMERA_FPS, frames=moving_rectangles).start()
        for camera_id in LINES
    }
    try:
        with running_server(tmp_path) as server, server.admin() as admin:
            register_site(server, tmp_path)
            database = tmp_path / "tally.sqlite3"
            config = site_config(tmp_path, cameras)
            with running_worker(config, server.base_url, tmp_path) as worker:
                # both cameras deliver, each under its own token (the API answers 403 for a
                # report posted with another camera's token)
                eventually(
                    lambda: all(reports(database)[c] for c in LINES),
                    180,  # the model's first load (an OpenVINO export) on a busy host
                    "a stored report from each camera",
                    worker,
                )
                eventually(
                    lambda: (
                        {h["state"] for h in stream_health(admin).values()} == {"streaming"}
                        and set(stream_health(admin)) == set(LINES)
                    ),
                    2 * HEARTBEAT_S + 5,
                    "a streaming heartbeat from each camera",
                    worker,
                )
                health = stream_health(admin)
                for camera_id in LINES:
                    assert health[camera_id]["stream_camera"] == camera_id
                    assert health[camera_id]["last_seen_at"] is not None
                assert_one_model_and_no_refused_token(worker.text())

                # one camera dies: its health says so, the other keeps streaming and reporting
                north = cameras["north-cam"]
                north.stop()
                south_beat = stream_health(admin)["south-cam"]["received_at"]

                def north_down_south_streaming() -> bool:
                    now = stream_health(admin)
                    return (
                        now["north-cam"]["state"] in ("reconnecting", "stalled")
                        and now["south-cam"]["state"] == "streaming"
                        and now["south-cam"]["received_at"] > south_beat
                    )

                eventually(
                    north_down_south_streaming,
                    2 * HEARTBEAT_S + 5,
                    "north-cam reconnecting while south-cam streams",
                    worker,
                )
                assert stream_health(admin)["north-cam"]["reconnects"] >= 1

                # it comes back
                north.start()
                eventually(
                    lambda: stream_health(admin)["north-cam"]["state"] == "streaming",
                    30,
                    "north-cam streaming again",
                    worker,
                )

                # SIGTERM: exit 0 promptly, with the open intervals delivered as partial reports
                worker.process.send_signal(signal.SIGTERM)
                stopped_at = time.time()
                assert worker.process.wait(timeout=20) == 0, worker.tail()
                log = worker.text()
            stored = reports(database)
            for camera_id in LINES:
                outbox = outbox_rows(tmp_path, camera_id)
                assert outbox["pending"] == set(), f"{camera_id}: undelivered reports left"
                assert outbox["dead_letter"] == set(), f"{camera_id}: reports rejected"
                ids = {report_id for report_id, _, _ in stored[camera_id]}
                assert outbox["delivered"] <= ids
                last_id, last_start, last_partial = stored[camera_id][-1]
                assert last_partial, f"{camera_id}: last report {last_start} is not partial"
                assert last_id in outbox["delivered"]
                assert stopped_at - last_start < 3 * INTERVAL_S, last_start
            assert_one_model_and_no_refused_token(log)
    finally:
        for camera in cameras.values():
            camera.stop()
