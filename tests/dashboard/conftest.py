"""A real API on loopback, seeded with a few days of realistic traffic, and real Chromium.

Site `high-st` (public, Europe/Berlin) has one camera reporting every 5 minutes from local
midnight three days ago until now, except a five-hour gap two days ago (10:00-15:00 local).
Site `mill-rd` (private) has a quieter camera with no gap and a second camera that never
reported. The browser runs in another timezone, so times shown must be the site's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from contract import IntervalReport
from tests.support.tally_api import (
    SeedCamera,
    TallyServer,
    add_site,
    post_history,
    register_camera,
    running_server,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SITE_TZ = ZoneInfo("Europe/Berlin")
BROWSER_TZ = "America/Los_Angeles"
LAPTOP = {"width": 1366, "height": 900}
INTERVAL_S = 300


@dataclass(frozen=True)
class Seeded:
    """What was posted, for tests to compute expected values from."""

    server: TallyServer
    first_day: date
    gap_day: date
    gap: tuple[datetime, datetime]
    reports: dict[str, list[IntervalReport]]

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def last_full_day(self) -> date:
        return self.first_day + timedelta(days=2)


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SITE_TZ).astimezone(UTC)


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    now = datetime.now(UTC)
    first_day = now.astimezone(SITE_TZ).date() - timedelta(days=3)
    gap_day = first_day + timedelta(days=1)
    start = local_midnight(first_day)
    end = datetime.fromtimestamp(now.timestamp() // INTERVAL_S * INTERVAL_S, UTC)
    gap_start = local_midnight(gap_day) + timedelta(hours=10)
    gap = (gap_start, gap_start + timedelta(hours=5))
    cameras = {
        "cam-a": SeedCamera("cam-a", start, end, INTERVAL_S, SITE_TZ, 1.0, gaps=[gap]),
        "cam-b": SeedCamera("cam-b", start, end, INTERVAL_S, SITE_TZ, 0.6),
    }
    with running_server(tmp_path_factory.mktemp("api")) as server, server.admin() as admin:
        add_site(
            admin,
            "high-st",
            "High Street",
            52.52,
            13.40,
            road="B96",
            timezone="Europe/Berlin",
            public=True,
        )
        add_site(
            admin, "mill-rd", "Mill Road", 52.50, 13.45, road="L1090", timezone="Europe/Berlin"
        )
        reports = {}
        for camera_id, site_id in (("cam-a", "high-st"), ("cam-b", "mill-rd")):
            token = register_camera(admin, site_id, camera_id, INTERVAL_S)
            reports[camera_id] = post_history(server.base_url, token, cameras[camera_id])
        register_camera(admin, "mill-rd", "cam-b2", INTERVAL_S)
        yield Seeded(server, first_day, gap_day, gap, reports)


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make install-system)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    chromium = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser, seeded: Seeded) -> Iterator[Page]:
    """A fresh page; the test fails if anything was logged as a console or page error."""
    context = browser.new_context(
        viewport=LAPTOP, timezone_id=BROWSER_TZ, base_url=seeded.base_url, accept_downloads=True
    )
    tab = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} at {message.location}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    yield tab
    context.close()
    assert errors == [], "\n".join(errors)
