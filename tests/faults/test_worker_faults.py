"""Worker-side faults: a clock that jumps, a full disk under the outbox, a camera that dies.

They drive the worker's real stages (source, aggregator, outbox, CameraWorker.store) without
the model: none of these faults depends on what is detected.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract import IntervalReport
from contract.camera import CountLine
from contract.site import Camera, SiteConfig
from detector.aggregate import HealthCounters, IntervalAggregator
from detector.backoff import Backoff
from detector.currency import FrameMeta
from detector.outbox import Outbox, OutboxError
from detector.source import VideoSource
from detector.worker import CameraWorker
from tests.faults.conftest import REPO, ApiProcess, register_camera
from tests.faults.test_delivery_faults import assert_exactly_once, delivering, figure
from tests.support.mjpeg import MjpegServer
from tests.support.reports import make_report
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)
T0 = 1_767_600_000.0  # 2026-01-05T08:00:00Z, a minute boundary


def no_zones(_zone: str, _samples: list[object]) -> object:
    raise AssertionError("no zones configured")


def frames(aggregator: IntervalAggregator, start: float, seconds: float) -> list[IntervalReport]:
    """Feed 5 frames per second of stream time from ``start``."""
    closed: list[IntervalReport] = []
    for i in range(int(seconds * 5)):
        meta = FrameMeta(index=i, timestamp_s=start + i / 5, width=320, height=240)
        closed += aggregator.add_frame(meta)
    return closed


def test_clock_jumps_never_give_overlapping_or_duplicate_intervals(
    tmp_path: Path, sqlite_url: str, api_on: list[ApiProcess]
) -> None:
    """Back 90 s, forward an hour, and a restart with the clock 3 min behind."""
    camera = register_camera(sqlite_url)
    api = ApiProcess(sqlite_url, tmp_path).start()
    api_on.append(api)
    outbox = Outbox(tmp_path / "outbox.db")
    first = IntervalAggregator(camera.id, 60, no_zones)  # type: ignore[arg-type]
    produced = frames(first, T0, 150)
    produced += frames(first, T0 + 60, 60)  # NTP steps the clock back 90 s
    produced += frames(first, T0 + 3600 + 130, 70)  # then forward by an hour
    produced += first.flush()
    restarted = IntervalAggregator(camera.id, 60, no_zones)  # type: ignore[arg-type]
    produced += frames(restarted, T0 + 3600 + 20, 130)  # restart, clock 3 min behind
    produced += restarted.flush()
    accepted = [r for r in produced if outbox.put(r)]
    with delivering(outbox, api.url, camera.token):
        wait_until(lambda: outbox.backlog() == 0, 30, "delivery")
    assert_exactly_once(sqlite_url, camera.id, accepted)
    starts = sorted(r.interval_start.timestamp() for r in accepted)
    assert all(b - a >= 60 for a, b in itertools.pairwise(starts)), "overlap"
    assert len(produced) > len(accepted), "the restart re-reported an interval"


@pytest.fixture(scope="session")
def motorway_clip() -> Path:
    shared = Path(os.environ.get("TALLY_SHARED") or REPO.parent / "shared")
    return shared / "data" / "video" / "motorway_cctv_twoway_320x240.avi"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (we run as root); skipped where mounting is not allowed."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of the file system."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as handle:
        while True:
            handle.write(b"\0" * 4096)
            handle.flush()
    return filler


def test_full_disk_is_a_clear_error_and_counted_drops_not_a_crash(
    tiny_disk: Path, motorway_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    camera = Camera(
        id="cam-1",
        source=str(motorway_clip),
        lines=[CountLine(name="a", points=((0, 0.5), (1, 0.5)))],
    )
    config = SiteConfig(site="s", cameras=[camera])
    outbox = Outbox(tiny_disk / "outbox.db")
    outbox.put(make_report(0))
    worker = CameraWorker(
        camera,
        config,
        None,
        outbox,
        VideoSource(camera.source),  # type: ignore[arg-type]
    )
    filler = fill(tiny_disk)
    lost = [make_report(m, cars=50) for m in range(1, 6)]
    with caplog.at_level(logging.ERROR, logger="detector.worker"):
        worker.store(lost)  # must not raise
    assert worker.unstored_reports == len(lost)
    assert "outbox unusable" in caplog.text
    assert "full" in caplog.text  # SQLite's 'database or disk is full', not a traceback
    assert worker.health().dropped_reports == len(lost), "the next report carries the drops"
    assert worker.heartbeat().dropped_reports == len(lost)
    assert worker.health().dropped_reports == 0, "a drop is reported once, not in every report"
    assert worker.heartbeat().dropped_reports == len(lost), "the heartbeat keeps the total"
    with pytest.raises(OutboxError, match="full"):
        outbox.put(make_report(9))
    filler.unlink()  # space comes back: the same worker goes on, nothing queued is lost
    worker.store([make_report(10)])
    assert outbox.backlog() == 2
    figure("disk_full_counted_drops", worker.unstored_reports)


def test_stream_dies_and_returns_reconnects_and_reports_the_gap() -> None:
    """A 10-s interval with the camera off for ~4 s has coverage well under 1."""
    server = MjpegServer(fps=25).start()
    source = VideoSource(server.url(), backoff=Backoff(0.2, 2.0), stall_timeout_s=2.0)
    aggregator = IntervalAggregator(
        "cam-1",
        10,
        no_zones,  # type: ignore[arg-type]
        health=lambda: HealthCounters(reconnects=source.reconnects),
    )
    reports: list[IntervalReport] = []

    def consume() -> None:
        for pending in source:
            reports.extend(aggregator.add_frame(pending.meta))

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(reports) >= 1, 25, "a first closed interval")
        server.stop()
        died = time.monotonic()
        time.sleep(4)
        server.start()
        wait_until(lambda: source.state == "streaming", 15, "the source to reconnect")
        figure("stream_reconnect_s", time.monotonic() - died - 4)
        seen = len(reports)
        wait_until(lambda: len(reports) >= seen + 2, 30, "intervals after the gap")
    finally:
        source.stop()
        server.stop()
        thread.join(timeout=10)
    assert source.reconnects >= 1
    assert server.connections >= 2
    gap = min(reports[1:], key=lambda r: r.coverage)
    assert gap.coverage < 0.8, [r.coverage for r in reports]
    assert gap.health.reconnects >= 1 or any(r.health.reconnects for r in reports)
    assert max(r.coverage for r in reports[1:]) > 0.9, "full intervals stay full"
    figure("gap_interval_coverage", gap.coverage)
    starts = [r.interval_start for r in reports]
    assert len(starts) == len(set(starts))
