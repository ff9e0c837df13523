"""Site config validation: clear errors for every kind of mistake an installer makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contract.site import ConfigError, load_config

VALID = """\
version: 1
site: main-street
cameras:
  - id: cam-1
    source: rtsp://user:secret@10.0.0.5/stream
    lines:
      - name: northbound
        points: [[0.1, 0.5], [0.9, 0.5]]
        direction_names: {down: southbound, up: northbound}
    zones:
      - name: approach
        polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.4], [0.1, 0.4]]
        lanes: 2
        length_m: 60
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.cameras[0].lines[0].direction_names["down"] == "southbound"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("lines:", "lnes:"), "lnes"),
        (("[0.9, 0.5]]", "[1.5, 0.5]]"), "outside 0-1"),
        (("[0.9, 0.5]]", "[0.1, 0.5]]"), "same"),
        (("id: cam-1", "id: Cam 1"), "cameras.0.id"),
        (("version: 1", "version: 2"), "version"),
        (("lanes: 2", "lanes: 0"), "lanes"),
        (("site: main-street", "site: ../etc"), "site"),
        (("    zones:", "    interval_seconds: 7\n    zones:"), "interval_seconds"),
    ],
)
def test_bad_configs_are_explained(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, VALID.replace(*change)))


@pytest.mark.parametrize("text", ["", "- a list", "cameras: [", "site: x\ncameras: []"])
def test_unusable_files_are_explained(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_check_config_cli(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "detector", "check-config", str(write(tmp_path, VALID))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0
    assert "OK" in ok.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "detector",
            "check-config",
            str(write(tmp_path, VALID.replace("lanes: 2", "lanes: 99"))),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "cameras.0.zones.0.lanes" in bad.stderr
    assert "secret" not in bad.stderr + ok.stdout


EVERY_RUN_TIME_MISTAKE = """\
version: 1
site: main-street
cameras:
  - id: cam-1
    source: clip.mp4
    lines:
      - name: stub
        points: [[0.5, 0.5], [0.5, 0.5]]
      - name: merged
        points: [[0.1, 0.5], [0.9, 0.5]]
        direction_names: {down: both, up: both}
      - name: beyond
        points: [[0.1, 0.7], [1.5, 0.7]]
    zones:
      - name: bowtie
        polygon: [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
    calibration:
      image_points: [[0.1, 0.1], [0.5, 0.5], [0.9, 0.9], [0.1, 0.9]]
      ground_points_m: [[0, 0], [10, 0], [10, 40], [0, 40]]
  - id: cam-2
    source: clip.mp4
    zones:
      - name: flat
        polygon: [[0.1, 0.5], [0.5, 0.5], [0.9, 0.5]]
      - name: flat
        polygon: [[0.1, 0.1], [0.9, 0.1], [0.5, 0.4]]
"""


def test_check_config_reports_every_run_time_mistake_at_its_place(tmp_path: Path) -> None:
    """One run names each problem where it is, so an installer fixes them all at once."""
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "detector",
            "check-config",
            str(write(tmp_path, EVERY_RUN_TIME_MISTAKE)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    expected = {
        "cameras.0.lines.0": "zero length",
        "cameras.0.lines.1": "same label",
        "cameras.0.zones.0": "not simple",
        "cameras.0.calibration": "degenerate",
        "cameras.1.zones.0": "zero area",
        "cameras.0": "line 'beyond': point (1.5, 0.7) is outside 0-1",
    }
    for where, what in expected.items():
        assert any(where in line and what in line for line in bad.stderr.splitlines()), (
            where,
            bad.stderr,
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            (
                "lanes: 2",
                "lanes: 2\n      - name: approach\n        polygon: [[0, 0], [1, 0], [1, 1]]",
            ),
            "zone names must be unique",
        ),
        (("    zones:", "    lines: []\n    zones: []\n    unused:"), "unused"),
    ],
)
def test_camera_rules_are_located(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, VALID.replace(*change)))
