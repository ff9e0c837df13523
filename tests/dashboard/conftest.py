"""A real API on loopback, seeded with a few days of realistic traffic, and real Chromium.

Site `high-st` (public, Europe/Berlin) has one camera reporting every 5 minutes from local
midnight three days ago until now, except a five-hour gap two days ago (10:00-15:00 local).
Site `mill-rd` (private) has a quieter camera with no gap and a second camera that never
reported. The browser runs in another timezone, so times shown must be the site's.

Planner endpoints need a signed-in account: `page` is a tab signed in as a viewer, and
`open_tab` makes more (any role, or anonymous). Every tab fails its test on a console error,
an uncaught page error or a Content-Security-Policy violation, unless the test names the
console errors it expects (the 401 of a signed-out tab, the 422 of a form it fills wrongly).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
)

from api.services.access import ROLES, Role
from contract import IntervalReport
from tests.support.tally_api import (
    SeedCamera,
    TallyServer,
    add_site,
    post_history,
    register_camera,
    running_server,
)

SITE_TZ = ZoneInfo("Europe/Berlin")
BROWSER_TZ = "America/Los_Angeles"
LAPTOP = {"width": 1366, "height": 900}
INTERVAL_S = 300
CSP_WATCH = """
document.addEventListener('securitypolicyviolation', (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""
"""Reports every Content-Security-Policy violation as a console error (which fails the test)."""


@dataclass(frozen=True)
class Account:
    """A planner account and its generated password."""

    email: str
    password: str
    role: Role
    display_name: str


def add_account(
    admin: httpx.Client,
    email: str,
    display_name: str,
    role: Role,
    site_ids: list[str] | None = None,
) -> Account:
    """Create an account through the admin API; the generated password comes back once."""
    response = admin.post(
        "/api/v1/admin/users",
        json={"email": email, "display_name": display_name, "role": role, "site_ids": site_ids},
    )
    response.raise_for_status()
    return Account(email, str(response.json()["password"]), role, display_name)


def sign_in(context: BrowserContext, account: Account) -> None:
    """Log the context in through the API; its cookie jar then holds the session."""
    response = context.request.post(
        "/api/v1/auth/login", data={"email": account.email, "password": account.password}
    )
    assert response.status == 200, response.text()


def csrf_token(context: BrowserContext) -> str:
    """The signed-in context's CSRF token (from /auth/me)."""
    response = context.request.get("/api/v1/auth/me")
    assert response.status == 200, response.text()
    return str(response.json()["csrf_token"])


@dataclass(frozen=True)
class Seeded:
    """What was posted, for tests to compute expected values from."""

    server: TallyServer
    first_day: date
    gap_day: date
    gap: tuple[datetime, datetime]
    reports: dict[str, list[IntervalReport]]
    accounts: dict[Role, Account] = field(default_factory=dict)

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
        accounts = {
            role: add_account(admin, f"{role}@example.org", f"Pat {role.title()}", role)
            for role in ROLES
        }
        yield Seeded(server, first_day, gap_day, gap, reports, accounts)


class OpenTab(Protocol):
    """Makes a tab on `base_url`, signed in as `account` (None: signed out)."""

    def __call__(
        self,
        account: Account | None,
        *,
        base_url: str | None = None,
        viewport: dict[str, int] = LAPTOP,
        expect_console: str | None = None,
        has_touch: bool = False,
    ) -> Page: ...


@pytest.fixture
def open_tab(browser: Browser, seeded: Seeded) -> Iterator[OpenTab]:
    """Tabs in fresh contexts; the test fails if any logged an error it did not expect.

    `expect_console` is a regular expression for console errors the test causes on purpose
    (Chromium logs every 4xx a page fetches as an error).
    """
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(
        account: Account | None,
        *,
        base_url: str | None = None,
        viewport: dict[str, int] = LAPTOP,
        expect_console: str | None = None,
        has_touch: bool = False,
    ) -> Page:
        context = browser.new_context(
            viewport=viewport,
            timezone_id=BROWSER_TZ,
            base_url=base_url or seeded.base_url,
            accept_downloads=True,
            has_touch=has_touch,
        )
        contexts.append(context)
        context.add_init_script(CSP_WATCH)
        if account is not None:
            sign_in(context, account)
        tab = context.new_page()
        expected = re.compile(expect_console) if expect_console else None

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" and not (expected and expected.search(message.text)):
                errors.append(f"console: {message.text} at {message.location}")

        tab.on("console", on_console)
        tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        return tab

    yield make
    for context in contexts:
        context.close()
    assert errors == [], "\n".join(errors)


@pytest.fixture
def page(open_tab: OpenTab, seeded: Seeded) -> Page:
    """A tab signed in as a viewer (who reads private sites and device health)."""
    return open_tab(seeded.accounts["viewer"])
