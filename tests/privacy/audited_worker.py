"""Runs the real worker on a real clip under an audit hook; prints what it wrote and sent.

With ``--install`` it runs unaudited once first, as an installer would, so the one-time
OpenVINO export into the model cache is done before the audited run.

Run as a child process (an audit hook cannot be removed):
``python audited_worker.py WORKDIR CLIP MODEL``.
Every file opened for writing (Python's ``open`` audit event, ``os.open`` with write flags,
``sqlite3.connect``) and every HTTP request body that leaves through the uplink's transport
seam is recorded and printed as JSON on stdout.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
written: list[str] = []


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
    if not install_run:  # the first run installs (exports the model); the audited one runs
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

    def api(request: httpx.Request) -> httpx.Response:
        with lock:
            sent.append(
                {"url": str(request.url), "body": base64.b64encode(request.content).decode()}
            )
        return httpx.Response(200, json={"accepted": 1})

    config = SiteConfig.model_validate(
        {
            "site": "privacy-test",
            "model": {"path": model},
            "outbox": {
                "path": str(workdir / ("install-outbox.db" if install_run else "outbox.db"))
            },
            "uplink": {"api_url": "http://tally.test", "heartbeat_s": 5},
            "cameras": [
                {
                    "id": "cam-1",
                    "source": clip,
                    "interval_seconds": 10,
                    "reference_resolution": [320, 240],
                    "lines": [
                        {"name": "left-carriageway", "points": [[100, 45], [100, 112]]},
                        {"name": "right-carriageway", "points": [[140, 130], [305, 130]]},
                    ],
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
    run_worker(config, transport=httpx.MockTransport(api), start_epoch=1_780_000_000.0)
    print(json.dumps({"written": sorted(set(written)), "sent": sent}))


if __name__ == "__main__":
    main()
