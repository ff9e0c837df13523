"""Invariant 1, proven on a real run: no imagery leaves memory, only aggregates leave the worker.

A real clip goes through the real model and the real worker under an audit hook, while the
API at its transport seam asks for a scene map and offers a newer configuration. The test
then checks every file the worker opened for writing (outbox, cached configuration, log),
every byte it sent (reports, heartbeats, the configuration pull, the scene map), its outbox,
its cache and its logs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contract import Heartbeat, IntervalReport, ReportBatch
from contract.scene import MAX_SCENE_CELLS, SceneMap
from detector.remote import VersionedSetup
from tests.conftest import MODEL, REPO_ROOT, VIDEO
from tests.privacy.audited_worker import CAMERA, PULLED_SETUP, SCENE

IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM", b"II*\x00", b"MM\x00*")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".avi", ".mp4"}
MAX_BODY_BYTES = 256 * 1024
MAX_SCENE_MAP_BYTES = 64 * 1024
"""A 320x240 frame is 230 KB of pixels: a map this small cannot carry one."""
REQUESTS = {
    ("POST", "reports"),
    ("POST", "heartbeat"),
    ("GET", "device/config"),
    ("POST", "device/scene-map"),
}
PER_VEHICLE_WORDS = re.compile(r"track|xyxy|bbox|trajector|centroid|\bbox\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def audited_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("audited")
    scratch = workdir / "tmp"  # Python's tempfile probes its folder with an empty file
    scratch.mkdir()
    command = [
        sys.executable,
        str(Path(__file__).with_name("audited_worker.py")),
        str(workdir),
        str(VIDEO / "motorway_cctv_twoway_320x240.avi"),
        str(MODEL),
    ]
    for extra in (["--install"], []):  # install (exports the model once), then the audited run
        completed = subprocess.run(
            command + extra,
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO_ROOT,
            timeout=600,
            env={**os.environ, "TMPDIR": str(scratch)},
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["workdir"] = workdir
    return result


def bodies(run: dict[str, Any], path: str) -> list[bytes]:
    return [base64.b64decode(s["body"]) for s in run["sent"] if s["url"].endswith(path)]


def cache_file(run: dict[str, Any]) -> Path:
    return Path(run["workdir"]) / f"{CAMERA}.config.json"


@pytest.mark.slow
def test_only_outbox_cached_config_and_logs_are_written(audited_run: dict[str, Any]) -> None:
    workdir: Path = audited_run["workdir"]
    allowed = (
        str(workdir / "outbox.db"),
        str(cache_file(audited_run)),  # and its temporary file, renamed over it
        str(workdir / "worker.log"),
        str(workdir / "yolo-config"),
        str(workdir / "tmp"),
    )
    for path in audited_run["written"]:
        assert path.startswith(allowed) or path == "/dev/null", f"unexpected write: {path}"
        assert Path(path).suffix.lower() not in IMAGE_SUFFIXES, path
    assert not [p for p in workdir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]


@pytest.mark.slow
def test_every_byte_sent_is_contract_aggregates(audited_run: dict[str, Any]) -> None:
    reports = bodies(audited_run, "/api/v1/reports")
    assert reports, "the worker sent no report"
    assert all(audited_run["seen"].values()), f"not every path ran: {audited_run['seen']}"
    counted = 0
    sent = reports + bodies(audited_run, "/api/v1/heartbeat")
    for body in sent + bodies(audited_run, "/api/v1/device/scene-map"):
        assert len(body) < MAX_BODY_BYTES
        assert not any(magic in body for magic in IMAGE_MAGIC)
        assert not re.search(rb"[A-Za-z0-9+/]{200,}", body), "base64-like blob in a payload"
    for body in reports:
        batch = ReportBatch.model_validate_json(body)
        counted += sum(row.count for report in batch.reports for row in report.counts)
        assert not PER_VEHICLE_WORDS.search(body.decode())
    for body in bodies(audited_run, "/api/v1/heartbeat"):
        Heartbeat.model_validate_json(body)
    assert counted > 10, "a real clip with dozens of vehicles must produce counts"
    made = {(s["method"], s["url"].split("/api/v1/")[1]) for s in audited_run["sent"]}
    assert made == REQUESTS
    pulls = bodies(audited_run, "/api/v1/device/config")
    assert pulls, "the newer configuration was pulled"
    assert set(pulls) == {b""}, "a configuration pull sends nothing"


@pytest.mark.slow
def test_the_scene_map_is_coarse_k_anonymous_aggregates(audited_run: dict[str, Any]) -> None:
    (body,) = bodies(audited_run, "/api/v1/device/scene-map")  # once per request
    assert len(body) < MAX_SCENE_MAP_BYTES
    scene_map = SceneMap.model_validate_json(body)
    assert json.loads(scene_map.model_dump_json()) == json.loads(body), "nothing but the contract"
    assert (scene_map.frame_width, scene_map.frame_height) == (320, 240)
    assert max(scene_map.cols, scene_map.rows) <= SCENE["grid"], "no finer than the grid"
    assert len(scene_map.cells) <= min(MAX_SCENE_CELLS, scene_map.cols * scene_map.rows)
    assert scene_map.k == SCENE["k"]
    assert all(cell.n >= SCENE["k"] for cell in scene_map.cells), "a cell below k is withheld"
    assert all(max(cell.k) <= cell.n for cell in scene_map.cells)
    assert scene_map.cells, "a real clip with dozens of vehicles must show its lanes"
    assert scene_map.analysed_s >= SCENE["learning_s"]
    assert not PER_VEHICLE_WORDS.search(body.decode())


@pytest.mark.slow
def test_the_pulled_configuration_is_applied_and_cached_as_set_up_only(
    audited_run: dict[str, Any],
) -> None:
    cached = cache_file(audited_run).read_bytes()
    assert not any(magic in cached for magic in IMAGE_MAGIC)
    assert set(json.loads(cached)) == {"version", "setup"}
    expected = VersionedSetup.model_validate({"version": 2, "setup": PULLED_SETUP})
    assert VersionedSetup.model_validate_json(cached) == expected
    versions = [
        report.config_version or 0
        for body in bodies(audited_run, "/api/v1/reports")
        for report in ReportBatch.model_validate_json(body).reports
    ]
    assert set(versions) == {2}, "the API's version, pulled at start: never the site file's"


@pytest.mark.slow
def test_outbox_holds_only_contract_reports(audited_run: dict[str, Any]) -> None:
    db = sqlite3.connect(audited_run["workdir"] / "outbox.db")
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for row in db.execute(f"SELECT * FROM {table}"):  # noqa: S608 (names from sqlite_master)
            for value in row:
                if isinstance(value, bytes):
                    assert not any(m in value for m in IMAGE_MAGIC)
                if isinstance(value, str) and value.startswith("{"):
                    IntervalReport.model_validate_json(value)
                    assert not PER_VEHICLE_WORDS.search(value)


@pytest.mark.slow
def test_logs_carry_no_per_vehicle_data_or_token(audited_run: dict[str, Any]) -> None:
    log = (audited_run["workdir"] / "worker.log").read_text(encoding="utf-8")
    assert "device-token-for-the-privacy-test" not in log
    assert not PER_VEHICLE_WORDS.search(log)
