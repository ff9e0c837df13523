"""The validation tally page and the site page's validation column, in real Chromium against a
real API whose cameras report every 10 s, so that a validation window (whole minutes, from the
next interval boundary) lasts one minute.

The page's clock is Playwright's fake one, paused: the page reads the server's time once when
it loads and counts from there, so jumping the fake clock moves the page into and past the
window without waiting. The API refuses to finish a session before its window has really
ended, so the main test does wait for that (about a minute), while the camera's reports are
posted through the real ingest endpoint; the site page's history is opened at the same time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from api.services.access import ROLES, Role
from tests.api.api_testkit import make_report
from tests.dashboard.conftest import SITE_TZ, Account, OpenTab, add_account
from tests.support.tally_api import TallyServer, add_site, register_camera, running_server

pytestmark = pytest.mark.browser
INTERVAL_S = 10
TABLET = {"width": 768, "height": 1024}
PHONE = {"width": 390, "height": 844}
RETRY_S = 3
"""The page's retry and polling period (RETRY_MS, POLL_MS in tally.js)."""
DROPPED = r"ERR_FAILED"
"""Chromium's console line for a request the test aborts on purpose."""
TALLY_PUT = "**/api/v1/validations/*/tally"
Counts = dict[tuple[str, str, str], int]
AUTOMATIC: list[Counts] = [
    {("main", "northbound", "car"): 2},
    {("main", "northbound", "car"): 1, ("main", "southbound", "car"): 1},
    {("main", "northbound", "truck"): 2},
    {("main", "southbound", "car"): 1},
    {("main", "southbound", "bus"): 1},
    {("main", "northbound", "motorcycle"): 1},
]
"""The browser-tallied camera's counts, one report per 10-s interval of the minute (9 in all)."""
HISTORY_MANUAL = [12, 10, 16]
"""Manual car counts of three earlier validations of the other camera, which counted 12 cars:
accuracies 100 %, 80 % and 75 %, oldest first."""


@dataclass(frozen=True)
class Bench:
    """A server of this module, its accounts and the other camera's open validations."""

    server: TallyServer
    accounts: dict[Role, Account]
    tokens: dict[str, str]
    history: list[dict[str, Any]]

    @property
    def base_url(self) -> str:
        return self.server.base_url


def post_reports(
    base_url: str, token: str, camera: str, start: datetime, rows: list[Counts]
) -> None:
    """One report per interval from `start`, through the device ingest endpoint."""
    reports = [
        make_report(
            camera, start + timedelta(seconds=i * INTERVAL_S), counts, interval_seconds=INTERVAL_S
        ).model_dump(mode="json")
        for i, counts in enumerate(rows)
    ]
    response = httpx.post(
        f"{base_url}/api/v1/reports",
        json={"reports": reports},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text


def opened(admin: httpx.Client, camera: str, manual: dict[str, int]) -> dict[str, Any]:
    """A one-minute validation opened and tallied through the API (as an editor's page would)."""
    created = admin.post(f"/api/v1/cameras/{camera}/validations", json={"minutes": 1})
    assert created.status_code == 201, created.text
    session: dict[str, Any] = created.json()
    saved = admin.put(f"/api/v1/validations/{session['id']}/tally", json={"manual": manual})
    assert saved.status_code == 200, saved.text
    return session


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    with running_server(tmp_path_factory.mktemp("tally")) as server, server.admin() as admin:
        add_site(admin, "tally-st", "Tally Street", 52.52, 13.40, timezone="Europe/Berlin")
        tokens = {
            camera: register_camera(admin, "tally-st", camera, INTERVAL_S)
            for camera in ("cam-t", "cam-v")
        }
        accounts = {
            role: add_account(admin, f"{role}@tally.example.org", f"Tally {role}", role)
            for role in ROLES
        }
        history = [opened(admin, "cam-v", {"main/northbound/car": n}) for n in HISTORY_MANUAL]
        start = datetime.fromisoformat(history[0]["starts_at"])
        cars: list[Counts] = [{("main", "northbound", "car"): 2}] * 6
        post_reports(server.base_url, tokens["cam-v"], "cam-v", start, cars)
        yield Bench(server, accounts, tokens, history)


def wait_until(moment: datetime) -> None:
    """Sleep until the server's clock (this machine's) has passed `moment`."""
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds() + 0.3))


class PageClock:
    """The tally page's clock: the fake (paused) browser clock plus the offset to the server's
    time that the page measured on loading, so after a (re)load it reads at least the time the
    load began; `jump_past` moves it just past a moment without waiting."""

    def __init__(self, tab: Page) -> None:
        self.tab = tab
        self.floor = time.time()
        tab.clock.install(time=self.floor)
        tab.clock.pause_at(self.floor + 1)

    def loading(self) -> None:
        """Call just before the page (re)loads: its clock reads the server's from then on."""
        self.floor = time.time()

    def jump_past(self, moment: datetime, margin_s: float = 2.0) -> None:
        delta = moment.timestamp() + margin_s - self.floor
        if delta > 0:
            self.tab.clock.fast_forward(int(delta * 1000))
            self.floor += delta


def settle(tab: Page) -> None:
    tab.wait_for_selector("main[aria-busy='false']")


def tap_button(tab: Page, key: str) -> Locator:
    return tab.locator(f"button.tap[data-key='{key}']")


def count_on(tab: Page, key: str) -> str:
    return str(tap_button(tab, key).locator(".tap-count").inner_text())


def stored_manual(bench: Bench, session_id: int) -> dict[str, int]:
    with bench.server.admin() as admin:
        response = admin.get(f"/api/v1/validations/{session_id}")
    response.raise_for_status()
    manual: dict[str, int] = response.json()["manual"]
    return manual


def assert_touch_friendly(tab: Page, viewport: dict[str, int]) -> None:
    """Nothing wider than the screen, and every tally button at least 48 px each way."""
    tab.set_viewport_size(viewport)
    assert tab.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    sizes = tab.locator("button.tap, .tally-actions button").evaluate_all(
        "bs => bs.map(b => [b.getBoundingClientRect().width, b.getBoundingClientRect().height])"
    )
    assert sizes
    assert min(min(size) for size in sizes) >= 48, sizes


def test_an_editor_tallies_a_window_by_mouse_keyboard_and_touch_and_sees_the_comparison(
    open_tab: OpenTab, bench: Bench
) -> None:
    tab = open_tab(
        bench.accounts["editor"],
        base_url=bench.base_url,
        viewport=TABLET,
        has_touch=True,
        expect_console=DROPPED,
    )
    clock = PageClock(tab)
    tab.goto("/?page=tally&site=tally-st&camera=cam-t")
    settle(tab)
    expect(tab.get_by_label("Camera", exact=True)).to_have_value("cam-t")
    assert tab.get_by_label("Minutes to count").input_value() == "15", "the 15-minute check"
    tab.get_by_label("Minutes to count").fill("1")
    tab.get_by_role("button", name="Start").click()
    panel = tab.locator("section.tally")
    expect(panel).to_have_attribute("data-phase", "waiting")
    session_id = int(panel.get_attribute("data-session") or 0)
    with bench.server.admin() as admin:
        session = admin.get(f"/api/v1/validations/{session_id}").json()
    start, end = (datetime.fromisoformat(session[key]) for key in ("starts_at", "ends_at"))
    assert (end - start).total_seconds() == 60
    assert start.timestamp() % INTERVAL_S == 0, "from an interval boundary"
    post_reports(bench.base_url, bench.tokens["cam-t"], "cam-t", start, AUTOMATIC[:-1])
    groups = tab.get_by_role("group").all_inner_texts()
    assert [g.split(":")[0] for g in groups] == ["main · southbound", "main · northbound"]
    assert tab.locator("button.tap").count() == 2 * 5, "one per direction and class"

    nb_car = "main/northbound/car"
    tap_button(tab, nb_car).click(force=True)  # marked aria-disabled, yet a tap lands
    expect(tab.get_by_role("alert")).to_contain_text("Not counted: counting starts at")
    assert count_on(tab, nb_car) == "0"

    clock.jump_past(start)
    expect(panel).to_have_attribute("data-phase", "counting")
    expect(tab.get_by_role("alert")).to_have_count(0)
    for _ in range(3):
        tap_button(tab, nb_car).click()
    expect(panel).to_have_attribute("data-saved", "true")
    assert count_on(tab, nb_car) == "3"

    sb_car = tap_button(tab, "main/southbound/car")
    sb_car.focus()
    tab.keyboard.press("Enter")
    tab.keyboard.press(" ")
    tab.keyboard.down("Enter")
    tab.keyboard.down("Enter")  # held down: a repeat, not a second vehicle
    tab.keyboard.up("Enter")
    expect(sb_car.locator(".tap-count")).to_have_text("3")

    for _ in range(2):
        tap_button(tab, "main/northbound/truck").tap()
    expect(tap_button(tab, "main/northbound/truck").locator(".tap-count")).to_have_text("2")
    tap_button(tab, nb_car).tap()
    expect(tap_button(tab, nb_car).locator(".tap-count")).to_have_text("4")
    tab.get_by_role("button", name="Undo last tap").click()
    expect(tap_button(tab, nb_car).locator(".tap-count")).to_have_text("3")
    expect(panel).to_have_attribute("data-saved", "true")
    assert stored_manual(bench, session_id) == {
        "main/northbound/car": 3,
        "main/northbound/truck": 2,
        "main/southbound/car": 3,
    }

    tab.route(TALLY_PUT, lambda route: route.abort())
    tap_button(tab, "main/southbound/bus").tap()
    expect(panel).to_have_attribute("data-saved", "false")
    expect(tab.locator(".tally-saved")).to_contain_text("Not saved yet")
    clock.loading()
    tab.reload()  # the connection is still down: the tally this tablet kept comes back
    settle(tab)
    clock.jump_past(start)
    expect(tap_button(tab, "main/southbound/bus").locator(".tap-count")).to_have_text("1")
    expect(panel).to_have_attribute("data-saved", "false")
    tap_button(tab, "main/southbound/bicycle").tap()
    assert "main/southbound/bus" not in stored_manual(bench, session_id)
    tab.unroute(TALLY_PUT)
    tab.clock.run_for(RETRY_S * 1000)
    expect(panel).to_have_attribute("data-saved", "true")
    expected = {
        "main/northbound/car": 3,
        "main/northbound/truck": 2,
        "main/southbound/bicycle": 1,
        "main/southbound/bus": 1,
        "main/southbound/car": 3,
    }
    assert stored_manual(bench, session_id) == expected, "no tap lost, none counted twice"

    for viewport in (PHONE, TABLET):
        assert_touch_friendly(tab, viewport)
    finish = tab.get_by_role("button", name="Finish and compare")
    expect(finish).to_be_disabled()
    clock.jump_past(end)
    expect(panel).to_have_attribute("data-phase", "ended")
    tap_button(tab, nb_car).tap(force=True)
    expect(tab.get_by_role("alert")).to_contain_text("Not counted: the window ended at")
    assert count_on(tab, nb_car) == "3"

    wait_until(end)  # the API compares only once the window has really passed
    finish.click()
    result = tab.locator(".tally-result")
    expect(result).to_have_attribute("data-complete", "false")
    expect(result).to_contain_text("Waiting for the camera's last reports")
    post_reports(
        bench.base_url,
        bench.tokens["cam-t"],
        "cam-t",
        end - timedelta(seconds=INTERVAL_S),
        AUTOMATIC[-1:],
    )
    tab.clock.run_for(RETRY_S * 1000)
    expect(result).to_have_attribute("data-complete", "true")
    cards = dict(
        zip(
            result.locator(".card-label").all_inner_texts(),
            result.locator(".card-value").all_inner_texts(),
            strict=True,
        )
    )
    assert cards == {
        "Accuracy": "90.0 %",  # 1 - |9 - 10| / 10
        "Manual count": "10",
        "Camera count": "9",
        "Camera coverage": "100.0 %",
    }
    rows = result.locator("tbody tr").evaluate_all(
        "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert ["main", "southbound", "Car", "3", "2", "-1"] in rows
    assert ["main", "northbound", "Motorcycle", "0", "1", "+1"] in rows
    assert rows[-1] == ["All", "", "", "10", "9", "-1"]
    assert tab.locator("img").count() == 0, "no imagery"
    assert tab.evaluate("Object.keys(localStorage)") == [], "the kept tally is gone once sent"


def test_the_site_page_shows_each_cameras_latest_validation_and_its_trend(
    open_tab: OpenTab, bench: Bench
) -> None:
    wait_until(datetime.fromisoformat(bench.history[0]["ends_at"]))
    with bench.server.admin() as admin:
        for session in bench.history:
            admin.post(f"/api/v1/validations/{session['id']}/finish").raise_for_status()
    trend = "Accuracy of the last 3 validations, oldest first: 100.0 %, 80.0 %, 75.0 %"
    started = datetime.fromisoformat(bench.history[-1]["starts_at"]).astimezone(SITE_TZ)
    tabs = {}
    for role in ("viewer", "editor"):
        tabs[role] = tab = open_tab(bench.accounts[role], base_url=bench.base_url)
        tab.goto("/?page=site&site=tally-st")
        settle(tab)
        row = tab.locator("section[aria-labelledby='h-cameras'] tr", has_text="cam-v")
        cells = row.locator("td").all_inner_texts()
        assert cells[2] == f"{started:%Y-%m-%d %H:%M} · 1 min · 75.0 %", "site time"
        expect(row.get_by_role("img", name=trend)).to_be_visible()
        assert (row.locator("svg polyline").get_attribute("points") or "").count(",") == 3
        links = row.get_by_role("link").all_inner_texts()
        assert links == ([] if role == "viewer" else ["Set up", "Validate"]), role
    editor = tabs["editor"]
    set_up = editor.get_by_role("link", name="Set up cam-v")
    assert "page=setup" in (set_up.get_attribute("href") or "")
    editor.get_by_role("link", name="Validate cam-v").click()
    expect(editor.locator("main")).to_have_attribute("data-page", "tally")
    assert "camera=cam-v" in editor.url
    earlier = editor.locator("section[aria-labelledby='h-earlier-validations'] tbody tr")
    expect(earlier).to_have_count(3)
    assert [row.locator("td").nth(4).inner_text() for row in earlier.all()] == [
        "75.0 %",
        "80.0 %",
        "100.0 %",
    ]
    earlier.first.get_by_role("button", name=re.compile("^Show the result")).click()
    expect(editor.locator(".tally-result")).to_have_attribute("data-complete", "true")
    expect(editor.locator(".tally-result .card-value").first).to_have_text("75.0 %")
    viewer = open_tab(bench.accounts["viewer"], base_url=bench.base_url)
    viewer.goto("/?page=tally&site=tally-st&camera=cam-v")
    settle(viewer)
    assert viewer.locator("main").get_attribute("data-page") == "overview", "editors only"
