"""A configuration saved in the API reaches a running worker and changes its counts, end to end.

Real processes on loopback: `python -m api serve`, the API's own command line to register the
camera from the worker's site file, and `python -m detector run` replaying a real clip through
the real model without end. An editor saves a new set-up (one line renamed, the other
removed): the worker pulls it at a heartbeat and counts with it without a restart; the interval
in progress closes as partial, every later report carries the new version, and every interval
is reported once. A set-up the worker cannot use (pixels of another aspect ratio) is refused,
the API shows why, and counting goes on. A restart with the API down counts with the cached
configuration. The time from saving to the API showing it applied is measured.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import MODEL, VIDEO
from tests.support.tally_api import TallyServer, free_port, running_server
from tests.support.worker_process import Worker, eventually, running_worker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(420),
    pytest.mark.skipif(not MODEL.is_file(), reason=f"offline model missing: {MODEL}"),
]

SITE, CAMERA = "remote-site", "remote-cam"
CLIP = VIDEO / "motorway_cctv_twoway_320x240.avi"
CLIP_S = 30
"""The clip's length: it loops, so any 30 s of stream hold the same vehicles."""
INTERVAL_S = 10
HEARTBEAT_S = 5
RIGHT = [[140, 130], [305, 130]]
FILE_SETUP: dict[str, Any] = {
    "reference_resolution": [320, 240],
    "lines": [
        {"name": "left-carriageway", "points": [[100, 45], [100, 112]]},
        {"name": "right-carriageway", "points": RIGHT},
    ],
    "interval_seconds": INTERVAL_S,
}
EDITED = {**FILE_SETUP, "lines": [{"name": "right-renamed", "points": RIGHT}]}
"""Version 2: the right line renamed, the left one removed."""
UNFIT = {
    "reference_resolution": [1280, 720],
    "lines": [{"name": "wide", "points": [[0, 360], [1280, 360]]}],
    "interval_seconds": INTERVAL_S,
}
"""Valid, but pixels of a 16:9 frame: they cannot be placed on the 4:3 stream."""
CONFLICT = "the API keeps a different first version"


@dataclass(frozen=True)
class Stored:
    """One stored report."""

    start: int
    partial: bool
    version: int | None
    counts: Counter[str]
    """Vehicles per line."""


def site_file(workdir: Path, outbox: Path, revision: int = 1) -> Path:
    config = {
        "site": SITE,
        "config_version": revision,
        "model": {"path": str(MODEL)},
        "cameras": [
            {
                "id": CAMERA,
                "source": str(CLIP),
                "plays": 0,
                "token_file": str(workdir / "token"),
                **FILE_SETUP,
            }
        ],
        "uplink": {"heartbeat_s": HEARTBEAT_S, "timeout_s": 5},
        "outbox": {"path": str(outbox)},
    }
    path = workdir / f"{outbox.stem}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def api_cli(server: TallyServer, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "api", *args],
        env=server.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def register(server: TallyServer, workdir: Path, config: Path) -> None:
    """As an installer does: site, camera from the worker's file (version 1), device token."""
    api_cli(server, "add-site", "--id", SITE, "--name", "Remote", "--lat", "51.5", "--lon", "0")
    api_cli(server, "add-camera", "--config", str(config), "--camera-id", CAMERA, "--site", SITE)
    (workdir / "token").write_text(api_cli(server, "issue-token", "--camera", CAMERA))


def save(admin: httpx.Client, setup: dict[str, Any]) -> int:
    response = admin.put(f"/api/v1/cameras/{CAMERA}/config", json={"setup": setup})
    assert response.status_code == 201, response.text
    return int(response.json()["version"])


def last_pull(admin: httpx.Client) -> dict[str, Any]:
    response = admin.get(f"/api/v1/cameras/{CAMERA}/config")
    assert response.status_code == 200, response.text
    return response.json()["config_pull"] or {}


def stored(database: Path) -> list[Stored]:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT interval_start_s, partial, config_version, payload FROM interval_reports"
            " WHERE camera_id = ? ORDER BY interval_start_s",
            (CAMERA,),
        ).fetchall()
    return [
        Stored(int(start), bool(partial), version, line_counts(json.loads(payload)))
        for start, partial, version, payload in rows
    ]


def counted_rows(database: Path) -> Counter[str]:
    """Vehicles per line in the API's count rows, which its count queries read."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT line, SUM(count) FROM count_rows WHERE camera_id = ? GROUP BY line", (CAMERA,)
        ).fetchall()
    return Counter({line: int(total) for line, total in rows})


def line_counts(payload: dict[str, Any]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in payload["counts"]:
        counts[row["line"]] += row["count"]
    return counts


def full_runs(reports: list[Stored], version: int) -> list[list[Stored]]:
    """Runs of consecutive full intervals counted with ``version``."""
    runs: list[list[Stored]] = []
    for report in reports:
        if report.partial or report.version != version:
            runs.append([])
        elif runs and runs[-1] and report.start == runs[-1][-1].start + INTERVAL_S:
            runs[-1].append(report)
        else:
            runs.append([report])
    return [run for run in runs if run]


def one_clip(reports: list[Stored], version: int, line: str) -> int | None:
    """Vehicles over ``line`` in the first ``CLIP_S`` of consecutive full intervals."""
    needed = CLIP_S // INTERVAL_S
    for run in full_runs(reports, version):
        if len(run) >= needed:
            return sum(report.counts[line] for report in run[:needed])
    return None


def outbox_ids(path: Path) -> dict[str, set[str]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {
            table: {row[0] for row in db.execute(f"SELECT report_id FROM {table}")}  # noqa: S608
            for table in ("pending", "delivered", "dead_letter")
        }


def stop(worker: Worker) -> str:
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0, worker.tail()
    return worker.text()


def test_a_saved_configuration_reaches_the_running_worker(tmp_path: Path) -> None:
    settings = {"TALLY_INGEST_MAX_AHEAD_S": "86400"}  # a replayed file runs ahead of the clock
    with running_server(tmp_path, settings=settings) as server, server.admin() as admin:
        config = site_file(tmp_path, tmp_path / "outbox.db")
        register(server, tmp_path, config)
        database = tmp_path / "tally.sqlite3"
        with running_worker(config, server.base_url, tmp_path) as worker:
            eventually(
                lambda: one_clip(stored(database), 1, "right-carriageway") is not None,
                180,
                "a clip's length of full intervals counted with version 1",
                worker,
            )
            saved_at = time.monotonic()
            assert save(admin, EDITED) == 2
            eventually(
                lambda: (
                    last_pull(admin).get("status") == "applied" and last_pull(admin)["version"] == 2
                ),
                2 * HEARTBEAT_S + 10,
                "version 2 applied",
                worker,
            )
            applied_s = time.monotonic() - saved_at

            saved_at = time.monotonic()
            assert save(admin, UNFIT) == 3
            eventually(
                lambda: last_pull(admin).get("version") == 3,
                2 * HEARTBEAT_S + 10,
                "version 3 judged",
                worker,
            )
            refused_s = time.monotonic() - saved_at
            refusal = last_pull(admin)
            counted_before = len(stored(database))
            eventually(
                lambda: (
                    one_clip(stored(database), 2, "right-renamed") is not None
                    and len(stored(database)) > counted_before + 1
                ),
                180,
                "counting on with version 2 after the refusal",
                worker,
            )
            log = stop(worker)
        reports = stored(database)
        rows = counted_rows(database)

    print(f"save -> applied: {applied_s:.1f} s, save -> refused: {refused_s:.1f} s")
    bound = 2 * HEARTBEAT_S + 2  # a heartbeat period, the follow-up one, a loaded machine
    assert applied_s < bound
    assert refused_s < bound
    assert refusal["status"] == "refused"
    assert "reference_resolution 1280x720 has another aspect ratio" in refusal["reason"]

    versions = [report.version or 0 for report in reports]
    assert versions == sorted(versions), "no report counted with an older version after a newer"
    assert set(versions) == {1, 2}, "nothing counted with the refused version 3"
    switch = versions.index(2)
    assert reports[switch - 1].partial, "the interval in progress at the switch closed as partial"
    starts = [report.start for report in reports]
    assert starts == list(range(starts[0], starts[-1] + 1, INTERVAL_S)), "each interval once"
    for report in reports:
        lines = set(report.counts)
        assert lines <= (
            {"left-carriageway", "right-carriageway"} if report.version == 1 else {"right-renamed"}
        )

    before = one_clip(reports, 1, "right-carriageway")
    after = one_clip(reports, 2, "right-renamed")
    assert before is not None
    assert after is not None
    assert abs(before - after) <= 4, (before, after)
    assert one_clip(reports, 1, "left-carriageway"), "version 1 counted the left line too"
    assert rows == sum((report.counts for report in reports), Counter()), "totals reconcile"

    outbox = outbox_ids(tmp_path / "outbox.db")
    assert outbox["pending"] == set(), "undelivered reports left"
    assert outbox["dead_letter"] == set(), "reports rejected"
    assert len(outbox["delivered"]) == len(reports), "each report the worker made is stored"
    assert CONFLICT not in log
    assert "configuration version 2 applied" in log
    assert "configuration version 3 refused, counting on with version 2" in log
    cache = json.loads((tmp_path / f"{CAMERA}.config.json").read_text(encoding="utf-8"))
    assert cache["version"] == 2

    # a restart while the API cannot be reached counts with the cached version 2, even
    # though the site file was edited since (revision 5, for another camera): the file's
    # revision is no version of this camera's set-up
    offline = site_file(tmp_path, tmp_path / "offline.db", revision=5)  # same folder: same cache
    restart = tmp_path / "restart"
    restart.mkdir()
    with running_worker(offline, f"http://127.0.0.1:{free_port()}", restart) as worker:
        eventually(
            lambda: bool(pending(tmp_path / "offline.db")), 120, "a report queued offline", worker
        )
        worker.process.kill()  # a returned put survives kill -9
        worker.process.wait(timeout=10)
        log = worker.text()
    assert "counting with cached configuration version 2, not the site file's" in log
    for queued in pending(tmp_path / "offline.db"):
        assert queued["config_version"] == 2
        assert {row["line"] for row in queued["counts"]} <= {"right-renamed"}


def pending(outbox: Path) -> list[dict[str, Any]]:
    """Reports queued in an outbox the worker may still be writing (none before it exists)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)) as db:
            return [json.loads(body) for (body,) in db.execute("SELECT body FROM pending")]
    except sqlite3.OperationalError:
        return []
