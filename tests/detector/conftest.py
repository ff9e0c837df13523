"""Fixtures for the edge-worker stage tests: real clips and real loopback servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mjpeg import MjpegServer

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared data folder: $TALLY_SHARED, else ../shared next to the repository."""
    return Path(os.environ.get("TALLY_SHARED") or REPO_ROOT.parent / "shared")


@pytest.fixture(scope="session")
def motorway_clip(shared_dir: Path) -> Path:
    clip = shared_dir / "data" / "video" / "motorway_cctv_twoway_320x240.avi"
    assert clip.is_file(), f"missing test clip {clip}"
    return clip


@pytest.fixture
def mjpeg_server() -> Iterator[MjpegServer]:
    """A live MJPEG camera on 127.0.0.1 that the test may stop and restart."""
    server = MjpegServer().start()
    yield server
    server.stop()
