"""Dead letters end to end: a report the real API rejects waits in the worker's dead-letter
table, is counted in the heartbeat, and after the camera's registration is fixed is re-sent
with ``python -m detector dead-letters`` and delivered exactly once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract import CountRow, IntervalReport, align_interval_start
from contract.examples import full_interval_report
from contract.site import SiteConfig, load_config
from detector.outbox import Outbox, outbox_path
from detector.source import VideoSource
from detector.uplink import ReportUplink
from detector.worker import CameraWorker, build_uplink
from tests.support.tally_api import add_site, register_camera, running_server

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[2]
CAMERA = "cam-dl"
LINE = {"name": "main", "direction_names": {"down": "southbound", "up": "northbound"}}
SIDE = {"name": "side", "direction_names": {"down": "southbound", "up": "northbound"}}
SITE_YAML = """\
version: 1
site: dl-site
cameras:
  - id: {camera}
    source: rtsp://127.0.0.1:9/stream
    lines:
      - name: main
        points: [[0.1, 0.5], [0.9, 0.5]]
        direction_names: {{down: southbound, up: northbound}}
      - name: side
        points: [[0.1, 0.8], [0.9, 0.8]]
        direction_names: {{down: southbound, up: northbound}}
uplink:
  api_url: {api_url}
  token_file: {token_file}
outbox:
  path: {outbox}
"""


def write_config(folder: Path, api_url: str = "http://127.0.0.1:9", camera: str = CAMERA) -> Path:
    token_file = folder / "token"
    if not token_file.exists():
        token_file.write_text("tally-device-token-for-tests\n")
    path = folder / "site.yaml"
    path.write_text(
        SITE_YAML.format(
            camera=camera, api_url=api_url, token_file=token_file, outbox=folder / "outbox.db"
        )
    )
    return path


def report(minute: int, lines: list[str]) -> IntervalReport:
    start = align_interval_start(datetime.now(UTC) - timedelta(minutes=30), 3600)
    rows = [CountRow(line=n, direction="northbound", vehicle_class="car", count=4) for n in lines]
    return full_interval_report(CAMERA, start + timedelta(minutes=minute), rows)


def dead_letters(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m detector dead-letters --config CONFIG ARGS``, as an operator runs it."""
    command = [sys.executable, "-m", "detector", "dead-letters", "--config", str(config), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


def deliver_all(uplink: ReportUplink, outbox: Outbox) -> None:
    for _ in range(20):
        if not outbox.backlog():
            return
        uplink.deliver_once()
    raise AssertionError(f"{outbox.backlog()} report(s) still pending")


def heartbeat_count(database: Path) -> int:
    with sqlite3.connect(database) as db:
        (count,) = db.execute(
            "SELECT dead_lettered_reports FROM device_health WHERE camera_id = ?", (CAMERA,)
        ).fetchone()
    return int(count)


def stored(database: Path) -> tuple[list[str], int]:
    with sqlite3.connect(database) as db:
        ids = [r[0] for r in db.execute("SELECT report_id FROM interval_reports")]
        (total,) = db.execute("SELECT COALESCE(SUM(count), 0) FROM count_rows").fetchone()
    return ids, int(total)


def test_rejected_report_waits_is_counted_and_is_delivered_once_after_the_fix(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path) as server, server.admin() as admin:
        database = tmp_path / "tally.sqlite3"
        add_site(admin, "dl-site", "Dead letters", 52.0, 13.0)
        (tmp_path / "token").write_text(register_camera(admin, "dl-site", CAMERA, 60))
        config_path = write_config(tmp_path, server.base_url)
        config: SiteConfig = load_config(config_path)
        camera = config.cameras[0]
        outbox = Outbox(outbox_path(config.outbox.path, CAMERA, 1))
        uplink = build_uplink(config, camera, outbox, transport=None)
        worker = CameraWorker(
            camera,
            config,
            None,  # type: ignore[arg-type]  # no frames here: heartbeats only
            outbox,
            VideoSource(camera.source),
        )
        good, rejected = report(0, ["main"]), report(1, ["main", "side"])
        assert [outbox.put(good), outbox.put(rejected)] == [True, True]

        deliver_all(uplink, outbox)  # the API has no line 'side' for this camera yet

        (letter,) = outbox.dead_letters()
        assert (letter.report_id, letter.status) == (rejected.report_id, 422)
        assert f"camera {CAMERA!r} has no line 'side'" in letter.detail
        assert stored(database) == ([good.report_id], 4)
        assert uplink.send_heartbeat(worker.heartbeat())
        assert heartbeat_count(database) == 1

        listed = dead_letters(config_path, "list")
        assert listed.returncode == 0, listed.stderr
        start = rejected.interval_start.isoformat().replace("+00:00", "Z")
        assert listed.stdout == f"{rejected.report_id}\t{start}/PT60S\t422\t{letter.detail}\n"
        assert "count" not in listed.stdout.replace("counted", "")

        fixed = {"id": CAMERA, "site_id": "dl-site", "interval_seconds": 60}
        fixed |= {"lines": [LINE, SIDE], "zones": [{"name": "approach", "lanes": 2}]}
        admin.put(f"/api/v1/admin/cameras/{CAMERA}", json=fixed).raise_for_status()
        resent = dead_letters(config_path, "resend", "--id", rejected.report_id)
        assert resent.returncode == 0, resent.stderr
        assert "1 report(s) moved back" in resent.stdout

        deliver_all(uplink, outbox)
        assert uplink.send_heartbeat(worker.heartbeat())
        uplink.close()

        ids, total = stored(database)
        assert sorted(ids) == sorted([good.report_id, rejected.report_id]), "each exactly once"
        assert total == 4 + 8, "no count lost or counted twice"
        assert (outbox.backlog(), outbox.dead_lettered()) == (0, 0)
        assert heartbeat_count(database) == 0
        assert dead_letters(config_path, "list").stdout == ""


def rejected_in(folder: Path, *minutes: int) -> tuple[Path, Outbox]:
    """A site config and its outbox holding one dead letter per minute."""
    config = write_config(folder)
    outbox = Outbox(folder / "outbox.db")
    for minute in minutes:
        outbox.put(report(minute, ["main"]))
        outbox.reject(report(minute, ["main"]).report_id, 422, f"problem {minute}")
    return config, outbox


def test_drop_needs_yes_and_counts_the_report_as_dropped(tmp_path: Path) -> None:
    config, outbox = rejected_in(tmp_path, 0, 1)
    target = report(0, ["main"]).report_id
    refused = dead_letters(config, "drop", "--id", target)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert outbox.dead_lettered() == 2
    dropped = dead_letters(config, "drop", "--id", target, "--yes")
    assert dropped.returncode == 0, dropped.stderr
    assert [d.report_id for d in outbox.dead_letters()] == [report(1, ["main"]).report_id]
    assert outbox.dropped_total() == 1
    assert dead_letters(config, "drop", "--id", target, "--yes").returncode == 1


def test_resend_all_and_mistakes_are_clear(tmp_path: Path) -> None:
    config, outbox = rejected_in(tmp_path, 0, 1, 2)
    assert dead_letters(config, "resend", "--id", "no-such-id").returncode == 1
    unknown = dead_letters(config, "--camera", "cam-x", "list")
    assert unknown.returncode == 2
    assert "no camera 'cam-x'" in unknown.stderr
    assert dead_letters(config, "resend").returncode == 2, "--all or --id is required"
    resent = dead_letters(config, "--camera", CAMERA, "resend", "--all")
    assert "3 report(s) moved back" in resent.stdout
    assert (outbox.backlog(), outbox.dead_lettered()) == (3, 0)
