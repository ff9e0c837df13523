"""A worker-side process for the kill -9 test: queue reports, then deliver them.

``python -m tests.faults.outbox_child OUTBOX API_URL TOKEN CAMERA COUNT``. It prints
``queued N`` after each durable put, then delivers with the real uplink, one report per
request, so a test can kill it at any moment in either phase.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import httpx

from detector.backoff import Backoff
from detector.outbox import Outbox
from detector.uplink import ReportUplink
from tests.support.reports import make_report


def main(outbox_path: str, api_url: str, token: str, camera: str, count: int) -> None:
    outbox = Outbox(Path(outbox_path))
    for minute in range(count):
        outbox.put(make_report(minute, camera_id=camera, cars=minute + 1))
        print(f"queued {minute + 1}", flush=True)
    uplink = ReportUplink(
        outbox,
        httpx.Client(timeout=5),
        api_url=api_url,
        token=token,
        batch_size=1,
        backoff=Backoff(0.05, 0.5),
        idle_poll_s=0.05,
    )
    stop = threading.Event()
    while outbox.backlog():
        stop.wait(uplink.deliver_once())
    print("delivered", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5], int(sys.argv[5]))
