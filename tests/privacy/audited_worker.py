"""Runs the real worker on a real clip under an audit hook; prints what it wrote and sent.

With ``--install`` it runs unaudited once first, as an installer would, so the one-time
OpenVINO export into the model cache is done before the audited run (in its own folder, so
its cached configuration does not spare the audited run its pull).

Run as a child process (an audit hook cannot be removed):
``python audited_worker.py WORKDIR CLIP MODEL``.
Every file opened for writing (Python's ``open`` audit event, ``os.open`` with write flags,
``sqlite3.connect``) and every HTTP request that leaves through the uplink's transport seam
is recorded and printed as JSON on stdout.

The API at the seam answers heartbeats as the real one does while an editor's scene-map
request is pending and a newer configuration is stored: the worker pulls that configuration,
applies and caches it, learns a scene map and posts it. The clip loops until the API has seen
a heartbeat reporting the configuration applied, the map, and the clip counted once more with
the pulled configuration, so every path runs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
written: list[str] = []
CAMERA = "cam-1"
LINES = [
    {"name": "left-carriageway", "points": [[100, 45], [100, 112]]},
    {"name": "right-carriageway", "points": [[140, 130], [305, 130]]},
]
PULLED_SETUP = {"reference_resolution": [320, 240], "lines": LINES[1:], "interval_seconds": 10}
"""Version 2, stored in the API: the right line only."""
SCENE = {"learning_s": 10, "grid": 32, "k": 3}
CLIP_INTERVALS = 3
"""Reports of the pulled configuration to wait for: the 30 s clip once more."""
LONGEST_RUN_S = 300.0


def audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and args:
        path, mode, flags = [*args, None, None][:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE_FLAGS
        )
        if writes and isinstance(path, (str, bytes, os.PathLike)):
            written.append(os.fsdecode(path))
    elif event == "sqlite3.connect" and args:
        written.append(os.fsdecode(args[0]))


def main() -> None:
    workdir, clip, model = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    install_run = len(sys.argv) > 4 and sys.argv[4] == "--install"
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_CONFIG_DIR"] = str(workdir / "yolo-config")
    os.environ["TALLY_MODEL_CACHE"] = str(workdir / "model-cache")
    os.environ["TALLY_DEVICE_TOKEN"] = "device-token-for-the-privacy-test"
    if install_run:
        (workdir / "install").mkdir(exist_ok=True)
    else:  # the first run installs (exports the model); the audited one runs
        sys.addaudithook(audit)

    import httpx

    from contract.site import SiteConfig
    from detector.worker import run_worker

    logging.basicConfig(
        filename=workdir / "worker.log",
        level=logging.DEBUG,
        format="%(levelname)s %(name)s %(message)s",
    )
    sent: list[dict[str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()
    seen = {"applied": False, "scene_map": False, "counted_after_switch": False}
    after_switch: list[object] = []

    def api(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with lock:
            sent.append(
                {
                    "method": request.method,
                    "url": str(request.url),
                    "body": base64.b64encode(request.content).decode(),
                }
            )
            if path.endswith("/device/scene-map"):
                seen["scene_map"] = True
            if path.endswith("/heartbeat"):
                pull = json.loads(request.content).get("config_pull") or {}
                seen["applied"] |= pull.get("status") == "applied"
            if path.endswith("/reports"):
                reports = json.loads(request.content)["reports"]
                after_switch.extend(r for r in reports if r["config_version"] == 2)
                seen["counted_after_switch"] = len(after_switch) >= CLIP_INTERVALS
            if all(seen.values()):
                stop.set()
        return httpx.Response(200, json=answer(path, seen["scene_map"]))

    timer = threading.Timer(LONGEST_RUN_S, stop.set)  # a worker that never asks still ends
    timer.daemon = True
    timer.start()
    config = SiteConfig.model_validate(
        {
            "site": "privacy-test",
            "model": {"path": model},
            "outbox": {"path": str(workdir / ("install" if install_run else "") / "outbox.db")},
            "uplink": {"api_url": "http://tally.test", "heartbeat_s": 5},
            "scene": SCENE,
            "cameras": [
                {
                    "id": CAMERA,
                    "source": clip,
                    "plays": 1 if install_run else 0,
                    "interval_seconds": 10,
                    "reference_resolution": [320, 240],
                    "lines": LINES,
                    "zones": [
                        {
                            "name": "right-approach",
                            "polygon": [[140, 100], [305, 100], [305, 200], [140, 200]],
                        }
                    ],
                    "calibration": {
                        "image_points": [[140, 200], [305, 200], [260, 100], [170, 100]],
                        "ground_points_m": [[0, 0], [7, 0], [7, 60], [0, 60]],
                    },
                }
            ],
        }
    )
    run_worker(config, transport=httpx.MockTransport(api), start_epoch=1_780_000_000.0, stop=stop)
    print(json.dumps({"written": sorted(set(written)), "sent": sent, "seen": seen}))


def answer(path: str, scene_map_received: bool) -> dict[str, object]:
    """The real API's answers, in shape (api/schemas.py)."""
    now = datetime.now(UTC).isoformat()
    if path.endswith("/heartbeat"):
        return {
            "camera_id": CAMERA,
            "received_at": now,
            "config_version": 2,
            "scene_map_wanted": not scene_map_received,
        }
    if path.endswith("/device/config"):
        return {"camera_id": CAMERA, "version": 2, "setup": PULLED_SETUP}
    if path.endswith("/device/scene-map"):
        return {"camera_id": CAMERA, "received_at": now, "cells": 0}
    return {"accepted": 1}


if __name__ == "__main__":
    main()
