"""Suite-wide settings (Ultralytics offline, its settings in a temp dir) and the headless
Chromium of the browser tests: one per test module, since Playwright's sync API allows one
driver per thread and its driver keeps an event loop running in that thread until it stops
(a later test's `asyncio.run` would refuse to start under it)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="tally-yolo-config-"))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TALLY_SHARED") or REPO_ROOT.parent / "shared")
MODEL = SHARED / "models" / "yolo26n_dq.pt"
VIDEO = SHARED / "data" / "video"


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make install-system)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    chromium = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
