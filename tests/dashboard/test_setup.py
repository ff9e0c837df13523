"""The camera set-up page in real Chromium against a real API: the scene map drawn without any
image, lines and zones drawn and moved by mouse and keyboard, proposals accepted, saving as
a new configuration version (and its 409 and 422 answers), the live check and calibration.

Every test registers its own camera on the module's server, so configurations saved by one
test never change what another counts. Scene maps are posted by the camera's device token
and reports through the real ingest endpoint, as a worker would.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from contract import ConfigPull, Heartbeat
from contract.scene import (
    Proposals,
    ProposedLine,
    ProposedZone,
    SceneCell,
    SceneMap,
)
from tests.api.api_testkit import make_report
from tests.dashboard.conftest import LAPTOP, Account, OpenTab, add_account
from tests.support.tally_api import TallyServer, add_site, register_camera, running_server

pytestmark = pytest.mark.browser
SITE = "setup-st"
FRAME = (1280, 720)
GRID = (32, 18)
ROAD_COLUMNS = {14: 80, 15: 80, 16: -80, 17: -80}
"""Grid column -> mean vertical motion (px/s): two lanes down, two lanes up."""
PROPOSED_LINE = [[520.0, 360.0], [760.0, 360.0]]
PROPOSED_ZONE = [[560.0, 100.0], [720.0, 100.0], [720.0, 300.0], [560.0, 300.0]]
EXPECTED_4XX = r"status of (404|409|422)"
"""Chromium's console line for an API refusal the test causes on purpose (no configuration or
scene map yet, a stale or an invalid save, degenerate calibration points)."""
PHONE = {"width": 390, "height": 844}
STEP_PX = 6
"""One arrow-key step on a 1280-pixel frame (half of 1 % of its long side, rounded)."""


@dataclass(frozen=True)
class Bench:
    server: TallyServer
    editor: Account

    @property
    def base_url(self) -> str:
        return self.server.base_url


@dataclass(frozen=True)
class Camera:
    id: str
    token: str


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    with running_server(tmp_path_factory.mktemp("setup")) as server, server.admin() as admin:
        add_site(admin, SITE, "Setup Street", 52.52, 13.40, timezone="Europe/Berlin")
        editor = add_account(admin, "editor@setup.example.org", "Setup Editor", "editor")
        yield Bench(server, editor)


@pytest.fixture
def camera(bench: Bench, request: pytest.FixtureRequest) -> Camera:
    """A fresh camera (one-minute intervals, line `main`, zone `approach`) for this test."""
    camera_id = f"cam-{zlib.crc32(request.node.name.encode()):08x}"
    with bench.server.admin() as admin:
        return Camera(camera_id, register_camera(admin, SITE, camera_id, 60))


def scene_map(camera_id: str, window_end: datetime | None = None) -> SceneMap:
    """A two-way road down the middle of a 1280 x 720 view, with one proposed line and zone."""
    end = window_end or datetime.now(UTC)
    cells = [
        SceneCell(
            c=c, r=r, n=10 + 3 * r, vx=0, vy=vy, s=0.6 if r < 4 else 0.1, k=[0, 10 + 3 * r, 0, 0, 0]
        )
        for c, vy in ROAD_COLUMNS.items()
        for r in range(GRID[1])
    ]
    return SceneMap(
        camera_id=camera_id,
        window_start=end - timedelta(minutes=5),
        window_end=end,
        analysed_s=300,
        frame_width=FRAME[0],
        frame_height=FRAME[1],
        cols=GRID[0],
        rows=GRID[1],
        k=3,
        vehicles=120,
        withheld_cells=9,
        cells=cells,
        proposals=Proposals(
            lines=[
                ProposedLine(
                    name="main",
                    points=PROPOSED_LINE,
                    direction_names={"down": "southbound", "up": "northbound"},
                    confidence=0.82,
                    reason="Crosses all four lanes of the busiest corridor",
                )
            ],
            zones=[
                ProposedZone(
                    name="approach",
                    polygon=PROPOSED_ZONE,
                    lanes=2,
                    confidence=0.7,
                    reason="Vehicles queue here",
                )
            ],
        ),
    )


def post_scene_map(bench: Bench, camera: Camera, window_end: datetime | None = None) -> None:
    response = httpx.post(
        f"{bench.base_url}/api/v1/device/scene-map",
        json=scene_map(camera.id, window_end).model_dump(mode="json"),
        headers={"Authorization": f"Bearer {camera.token}"},
    )
    assert response.status_code == 200, response.text


def store_config(bench: Bench, camera: Camera, setup: dict[str, Any]) -> int:
    with bench.server.admin() as admin:
        response = admin.put(f"/api/v1/cameras/{camera.id}/config", json={"setup": setup})
    assert response.status_code == 201, response.text
    return int(response.json()["version"])


def stored_config(bench: Bench, camera: Camera) -> dict[str, Any]:
    with bench.server.admin() as admin:
        response = admin.get(f"/api/v1/cameras/{camera.id}/config")
    assert response.status_code == 200, response.text
    config: dict[str, Any] = response.json()
    return config


def open_setup(
    open_tab: OpenTab, bench: Bench, camera: Camera, viewport: dict[str, int] = LAPTOP
) -> Page:
    tab = open_tab(
        bench.editor, base_url=bench.base_url, viewport=viewport, expect_console=EXPECTED_4XX
    )
    tab.goto(f"/?page=setup&site={SITE}&camera={camera.id}")
    expect(tab.locator("main")).to_have_attribute("data-page", "setup")
    expect(tab.locator("main")).to_have_attribute("aria-busy", "false")
    return tab


def screen_point(tab: Page, x: float, y: float) -> tuple[float, float]:
    """Where frame pixel (x, y) of the scene map is on the screen (scrolled into view)."""
    tab.locator("svg.scene-map").scroll_into_view_if_needed()
    point: list[float] = tab.evaluate(
        """([x, y]) => {
          const svg = document.querySelector('svg.scene-map');
          const p = new DOMPoint(x, y).matrixTransform(svg.getScreenCTM());
          return [p.x, p.y];
        }""",
        [x, y],
    )
    return point[0], point[1]


def click_map(tab: Page, x: float, y: float) -> None:
    tab.mouse.click(*screen_point(tab, x, y))


def assert_no_image(tab: Page) -> None:
    """No picture of the scene in any form: no <img>, no canvas, no CSS background image."""
    assert tab.locator("img:not(.leaflet-tile), canvas, image, video").count() == 0
    backgrounds = tab.evaluate(
        "[...document.querySelectorAll('*')]"
        ".filter((el) => getComputedStyle(el).backgroundImage !== 'none').length"
    )
    assert backgrounds == 0


def close_to(actual: list[list[float]], expected: list[list[float]], tolerance: float) -> bool:
    return all(
        abs(a - e) <= tolerance
        for pa, pe in zip(actual, expected, strict=True)
        for a, e in zip(pa, pe, strict=True)
    )


# --- scene map, drawing, saving --------------------------------------------------------------


def test_drawing_a_line_with_the_mouse_and_saving_pushes_a_new_version(
    open_tab: OpenTab, bench: Bench, camera: Camera
) -> None:
    post_scene_map(bench, camera)
    tab = open_setup(open_tab, bench, camera)
    scene = tab.locator("svg.scene-map")
    expect(scene.locator(".scene-cells rect")).to_have_count(len(ROAD_COLUMNS) * GRID[1])
    assert scene.locator(".scene-flows line").count() == len(ROAD_COLUMNS) * GRID[1]
    densest = scene.locator(".scene-cells rect[data-n='61']")
    assert densest.count() == len(ROAD_COLUMNS)
    assert densest.first.get_attribute("fill-opacity") == "1.000"
    assert scene.locator(".proposal").count() == 2, "the proposed line and zone, dashed"
    expect(tab.locator(".config-status")).to_contain_text("No configuration stored")
    assert_no_image(tab)

    tab.get_by_role("button", name="Draw line").click()
    expect(tab.get_by_role("button", name="Draw line")).to_have_attribute("aria-pressed", "true")
    start, end = (300.0, 500.0), (600.0, 540.0)
    tab.mouse.move(*screen_point(tab, *start))
    tab.mouse.down()
    tab.mouse.move(*screen_point(tab, *end), steps=8)
    tab.mouse.up()
    expect(scene.locator(".item.line")).to_have_count(1)
    expect(tab.get_by_role("button", name="Draw line")).to_have_attribute("aria-pressed", "false")
    form = tab.locator(".item-form[data-item='line:0']")
    form.get_by_label("Line name").fill("entry")
    form.get_by_label("Label for crossings down ↓").fill("outbound")
    form.get_by_label("Label for crossings up ↑").fill("inbound")
    expect(scene.locator(".item.line .direction-label")).to_have_text(["outbound", "inbound"])
    tab.get_by_label("Note for this version (optional)").fill("first line")
    tab.get_by_role("button", name="Save as a new version").click()
    expect(tab.get_by_role("status").filter(has_text="Saved version")).to_be_visible()

    config = stored_config(bench, camera)
    assert tab.locator(".config-status [data-version]").get_attribute("data-version") == str(
        config["version"]
    )
    assert config["note"] == "first line"
    setup = config["setup"]
    assert setup["reference_resolution"] is None, "a new set-up is saved in relative coordinates"
    (line,) = setup["lines"]
    assert line["name"] == "entry"
    assert line["direction_names"] == {"down": "outbound", "up": "inbound"}
    expected = [[start[0] / FRAME[0], start[1] / FRAME[1]], [end[0] / FRAME[0], end[1] / FRAME[1]]]
    assert close_to(line["points"], expected, 2 / FRAME[0]), line["points"]
    assert setup["zones"] == []
    assert_no_image(tab)


def test_keyboard_moves_renames_and_deletes_and_the_saved_version_keeps_pixel_coordinates(
    open_tab: OpenTab, bench: Bench, camera: Camera
) -> None:
    post_scene_map(bench, camera)
    first = store_config(
        bench,
        camera,
        {
            "reference_resolution": [640, 360],
            "lines": [{"name": "main", "points": [[100, 200], [500, 200]]}],
            "zones": [
                {"name": "approach", "polygon": [[300, 50], [360, 50], [360, 150], [300, 150]]}
            ],
            "interval_seconds": 60,
        },
    )
    tab = open_setup(open_tab, bench, camera)
    expect(tab.locator(".config-status")).to_contain_text(f"Latest version: {first}")
    tab.get_by_role("button", name="Add zone at centre").focus()
    tab.keyboard.press("Tab")
    focused = tab.evaluate("document.activeElement.dataset.handle")
    assert focused == "zone:0:0", "Tab reaches the points on the map"

    end = tab.locator("[data-handle='line:0:1']")
    expect(end).to_have_attribute("aria-label", "Line main, end 2 at 1000, 400")
    end.focus()
    for _ in range(3):
        tab.keyboard.press("ArrowRight")
    tab.keyboard.press("Shift+ArrowDown")
    moved = (1000 + 3 * STEP_PX, 400 + 10 * STEP_PX)
    expect(end).to_have_attribute("aria-label", f"Line main, end 2 at {moved[0]}, {moved[1]}")
    expect(tab.locator(".item-form[data-item='line:0'] .ends")).to_have_text(
        f"(200, 400) – ({moved[0]}, {moved[1]})"
    )
    tab.keyboard.press("Enter")
    name = tab.locator(".item-form[data-item='line:0']").get_by_label("Line name")
    expect(name).to_be_focused()
    name.fill("kerb")
    expect(tab.locator("svg .item.line .item-label")).to_have_text("kerb")

    tab.locator("[data-handle='zone:0:2']").focus()
    tab.keyboard.press("Delete")
    expect(tab.locator("svg .item.zone")).to_have_count(0)
    expect(tab.locator(".item-form[data-item^='zone']")).to_have_count(0)
    tab.get_by_role("button", name="Save as a new version").click()
    expect(tab.get_by_role("status").filter(has_text="Saved version")).to_be_visible()

    config = stored_config(bench, camera)
    assert config["version"] == first + 1
    setup = config["setup"]
    assert setup["reference_resolution"] == [640, 360], "saved in the mode it was stored in"
    assert setup["lines"] == [
        {
            "name": "kerb",
            "points": [[100, 200], [moved[0] / 2, moved[1] / 2]],
            "direction_names": {},
        }
    ]
    assert setup["zones"] == []


def test_accepting_proposals_adds_them_to_the_draft(
    open_tab: OpenTab, bench: Bench, camera: Camera
) -> None:
    post_scene_map(bench, camera)
    tab = open_setup(open_tab, bench, camera)
    proposal = tab.locator(".proposal-item[data-proposal='main']")
    expect(proposal).to_contain_text("confidence 82.0 %")
    expect(proposal).to_contain_text("Crosses all four lanes")
    tab.get_by_role("button", name="Accept proposal main").click()
    tab.get_by_role("button", name="Accept proposal approach").click()
    expect(tab.get_by_role("button", name="Accept proposal main")).to_be_disabled()
    expect(tab.locator("svg .item.line .direction-label")).to_have_text(
        ["southbound", "northbound"]
    )
    expect(tab.locator("svg .item.zone")).to_have_count(1)
    zone_form = tab.locator(".item-form[data-item='zone:0']")
    expect(zone_form.get_by_label("Lanes")).to_have_value("2")
    zone_form.get_by_label("Length along the road (m)").fill("35")
    tab.get_by_role("button", name="Save as a new version").click()
    expect(tab.get_by_role("status").filter(has_text="Saved version")).to_be_visible()

    setup = stored_config(bench, camera)["setup"]
    (line,) = setup["lines"]
    assert line["name"] == "main"
    assert line["direction_names"] == {"down": "southbound", "up": "northbound"}
    relative = [[x / FRAME[0], y / FRAME[1]] for x, y in PROPOSED_LINE]
    assert close_to(line["points"], relative, 1e-6)
    (zone,) = setup["zones"]
    assert (zone["name"], zone["lanes"], zone["length_m"]) == ("approach", 2, 35)
    assert close_to(zone["polygon"], [[x / FRAME[0], y / FRAME[1]] for x, y in PROPOSED_ZONE], 1e-6)


def test_a_stale_save_is_refused_and_an_invalid_zone_is_marked_where_it_is(
    open_tab: OpenTab, bench: Bench, camera: Camera
) -> None:
    post_scene_map(bench, camera)
    setup = {"lines": [{"name": "main", "points": [[0.2, 0.5], [0.8, 0.5]]}]}
    first = store_config(bench, camera, setup)
    tab = open_setup(open_tab, bench, camera)
    tab.get_by_role("button", name="Draw zone").click()
    for x, y in ((200, 200), (600, 500), (600, 200), (200, 500)):  # a bow-tie
        click_map(tab, x, y)
    tab.get_by_role("button", name="Finish zone").click()
    expect(tab.locator("svg .item.zone")).to_have_count(1)
    tab.get_by_role("button", name="Save as a new version").click()
    zone_form = tab.locator(".item-form[data-item='zone:0']")
    expect(zone_form.locator(".item-problem")).to_contain_text("not simple")
    expect(zone_form).to_have_attribute("aria-invalid", "true")
    assert stored_config(bench, camera)["version"] == first, "nothing saved"

    tab.locator("[data-handle='zone:0:1']").focus()
    tab.keyboard.press("Delete")
    second = store_config(bench, camera, {**setup, "interval_seconds": 300})
    tab.get_by_role("button", name="Save as a new version").click()
    problem = tab.locator(".save-form .form-problem")
    expect(problem).to_contain_text(f"version {second}")
    assert stored_config(bench, camera)["version"] == second, "the other save stands"
    problem.get_by_role("button", name="Load the latest version (discards your changes)").click()
    expect(tab.locator(".config-status")).to_contain_text(f"Latest version: {second}")
    expect(tab.get_by_label("Report interval")).to_have_value("300")


def touch(tab: Page, path: list[tuple[float, float]]) -> None:
    """One finger on the scene map along `path` (frame pixels): down, moves, up."""
    cdp = tab.context.new_cdp_session(tab)
    points = [screen_point(tab, x, y) for x, y in path]
    kinds = ["touchStart"] + ["touchMove"] * (len(points) - 1)
    for kind, (x, y) in zip(kinds, points, strict=True):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def end_at(tab: Page, handle: str) -> tuple[int, int]:
    label = tab.locator(f"[data-handle='{handle}']").get_attribute("aria-label") or ""
    found = re.search(r"at (\d+), (\d+)$", label)
    assert found, label
    return int(found.group(1)), int(found.group(2))


def test_two_taps_draw_a_line_and_a_finger_drags_its_end(
    open_tab: OpenTab, bench: Bench, camera: Camera
) -> None:
    post_scene_map(bench, camera)
    tab = open_setup(open_tab, bench, camera, viewport=PHONE)
    assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    tab.get_by_role("button", name="Draw line").click()
    touch(tab, [(300, 300)])
    expect(tab.locator("svg .pending-point")).to_have_count(1)
    touch(tab, [(700, 300)])
    expect(tab.locator("svg .item.line")).to_have_count(1)
    x, y = end_at(tab, "line:0:1")
    assert abs(x - 700) <= 1
    assert abs(y - 300) <= 1

    scrolled = tab.evaluate("window.scrollY")
    touch(tab, [(700, 300), *((700, 300 + 20 * i) for i in range(1, 7))])
    x, y = end_at(tab, "line:0:1")
    assert abs(x - 700) <= 1, x
    assert abs(y - 420) <= 1, y
    assert tab.evaluate("window.scrollY") == scrolled, "the finger moved the point, not the page"


def heartbeat(bench: Bench, camera: Camera, version: int, pull: ConfigPull) -> None:
    beat = Heartbeat(
        camera_id=camera.id,
        sent_at=datetime.now(UTC),
        uptime_s=60.0,
        outbox_backlog=0,
        dropped_reports=0,
        streams=[],
        config_version=version,
        config_pull=pull,
    )
    response = httpx.post(
        f"{bench.base_url}/api/v1/heartbeat",
        json=beat.model_dump(mode="json"),
        headers={"Authorization": f"Bearer {camera.token}"},
    )
    assert response.status_code == 200, response.text


def test_the_status_shows_the_version_the_worker_uses_and_what_became_of_its_pull(
    open_tab: OpenTab, bench: Bench, camera: Camera
) -> None:
    setup = {"lines": [{"name": "main", "points": [[0.2, 0.5], [0.8, 0.5]]}]}
    first = store_config(bench, camera, setup)
    second = store_config(bench, camera, {**setup, "interval_seconds": 300})
    reason = "line 'main' lies outside the 640 x 360 stream"
    heartbeat(
        bench,
        camera,
        first,
        ConfigPull(version=second, status="refused", reason=reason, at=datetime.now(UTC)),
    )
    tab = open_setup(open_tab, bench, camera)
    status = tab.locator(".config-status")
    expect(status).to_contain_text(f"Latest version: {second}")
    expect(status).to_contain_text(f"The worker counts with version {first}.")
    expect(status.locator(".refused")).to_contain_text(f"version {second} refused")
    expect(status.locator(".refused")).to_contain_text(reason)

    heartbeat(
        bench, camera, second, ConfigPull(version=second, status="applied", at=datetime.now(UTC))
    )
    expect(status).to_contain_text(
        f"The worker counts with version {second} (the latest).", timeout=12_000
    )
    expect(status).to_contain_text(f"Last pull: version {second} applied")
    expect(status.locator(".refused")).to_have_count(0)


# --- scene map request, live check ------------------------------------------------------------


def test_without_a_scene_map_the_page_requests_one_and_draws_it_when_it_arrives(
    open_tab: OpenTab, bench: Bench, camera: Camera
) -> None:
    tab = open_setup(open_tab, bench, camera)
    expect(tab.locator(".no-scene")).to_contain_text("No scene map yet")
    assert tab.locator("svg .scene-cells rect").count() == 0
    with tab.expect_response("**/scene-map/request") as answer:
        tab.get_by_role("button", name="Request a scene map").click()
    assert answer.value.status == 202
    expect(tab.locator(".waiting")).to_contain_text("waiting for the worker")
    with bench.server.admin() as admin:
        pending = admin.get(f"/api/v1/cameras/{camera.id}/scene-map")
    assert pending.status_code == 404
    assert "requested" in pending.json()["detail"]

    post_scene_map(bench, camera)
    expect(tab.locator("svg .scene-cells rect")).to_have_count(
        len(ROAD_COLUMNS) * GRID[1], timeout=15_000
    )
    expect(tab.locator(".waiting")).to_have_count(0)
    expect(tab.get_by_role("button", name="Accept proposal main")).to_be_visible()
    assert_no_image(tab)


def post_minute(bench: Bench, camera: Camera, start: datetime, north: int, south: int) -> None:
    report = make_report(
        camera.id,
        start,
        {("main", "northbound", "car"): north, ("main", "southbound", "truck"): south},
    )
    response = httpx.post(
        f"{bench.base_url}/api/v1/reports",
        json={"reports": [report.model_dump(mode="json")]},
        headers={"Authorization": f"Bearer {camera.token}"},
    )
    assert response.status_code == 200, response.text


def live_row(tab: Page, direction: str) -> list[str]:
    cells: list[str] = (
        tab.locator(".live tbody tr", has_text=direction).locator("th, td").all_inner_texts()
    )
    return cells


def test_the_live_check_shows_recent_counts_refreshes_and_stops_when_leaving(
    open_tab: OpenTab, bench: Bench, camera: Camera
) -> None:
    minute = datetime.fromtimestamp(datetime.now(UTC).timestamp() // 60 * 60, UTC)
    post_minute(bench, camera, minute - timedelta(minutes=2), north=4, south=1)
    post_minute(bench, camera, minute - timedelta(minutes=1), north=3, south=0)
    tab = open_setup(open_tab, bench, camera)
    expect(tab.locator(".live")).to_have_attribute("data-state", "ready")
    expect(tab.locator(".live tbody tr")).to_have_count(2)
    assert live_row(tab, "northbound") == ["main", "northbound", "7", "3"]
    assert live_row(tab, "southbound") == ["main", "southbound", "1", "0"]

    post_minute(bench, camera, minute - timedelta(minutes=3), north=5, south=2)
    expect(tab.locator(".live tbody tr", has_text="northbound")).to_contain_text(
        "12", timeout=12_000
    )
    assert live_row(tab, "southbound") == ["main", "southbound", "3", "0"]

    polls: list[str] = []
    tab.on("request", lambda r: polls.append(r.url) if "/live" in r.url else None)
    tab.locator("#nav").get_by_role("link", name="Overview").click()
    expect(tab.locator("main")).to_have_attribute("data-page", "overview")
    tab.wait_for_timeout(6_000)
    assert polls == [], "the live check stops when the page is left"


# --- calibration ------------------------------------------------------------------------------


CORNERS = [(200.0, 200.0), (1000.0, 200.0), (1100.0, 650.0), (100.0, 650.0)]


def pick_points(tab: Page) -> None:
    tab.get_by_role("button", name="Pick points on the scene map").click()
    for x, y in CORNERS:
        click_map(tab, x, y)
    tab.keyboard.press("Escape")
    expect(tab.locator("svg .item.pick")).to_have_count(len(CORNERS))


def fill_metres(tab: Page, ground: list[tuple[float, float]]) -> None:
    for i, (east, north) in enumerate(ground, start=1):
        tab.get_by_label(f"East (m) of point {i}").fill(str(east))
        tab.get_by_label(f"North (m) of point {i}").fill(str(north))


def test_calibration_in_metres_reports_its_error_refuses_degenerate_points_and_is_saved(
    open_tab: OpenTab, bench: Bench, camera: Camera
) -> None:
    post_scene_map(bench, camera)
    store_config(bench, camera, {"lines": [{"name": "main", "points": [[0.2, 0.5], [0.8, 0.5]]}]})
    tab = open_setup(open_tab, bench, camera)
    pick_points(tab)
    fit = tab.get_by_role("button", name="Fit calibration")
    fill_metres(tab, [(0, 30), (0, 0), (7, 0), (0, 30)])
    fit.click()
    expect(tab.locator(".calibration .form-problem")).to_contain_text("the same")
    fill_metres(tab, [(0, 30), (3.5, 30), (7, 30), (0, 0)])
    fit.click()
    expect(tab.locator(".calibration .form-problem")).to_contain_text("degenerate")
    expect(tab.locator(".calibration-result")).to_have_text("")

    ground = [(0.0, 30.0), (7.0, 30.0), (7.0, 0.0), (0.0, 0.0)]
    fill_metres(tab, ground)
    fit.click()
    expect(tab.locator(".calibration-result")).to_contain_text(
        "Re-projection error: 0.00 m over 4 points"
    )
    expect(tab.locator(".calibration-state")).to_contain_text("calibration of 4 points")
    tab.get_by_role("button", name="Save as a new version").click()
    expect(tab.get_by_role("status").filter(has_text="Saved version")).to_be_visible()
    calibration = stored_config(bench, camera)["setup"]["calibration"]
    assert calibration["ground_points_m"] == [list(p) for p in ground]
    relative = [[x / FRAME[0], y / FRAME[1]] for x, y in CORNERS]
    assert close_to(calibration["image_points"], relative, 2 / FRAME[0])

    tab.get_by_role("button", name="Pick points on the scene map").click()
    click_map(tab, 640, 420)
    tab.keyboard.press("Escape")
    fill_metres(tab, [*ground, (3.5, 9.0)])
    fit.click()
    result = tab.locator(".calibration-result")
    expect(result).to_contain_text("over 5 points")
    error_m = float(re.search(r"error: ([0-9.]+) m", result.inner_text()).group(1))  # type: ignore[union-attr]
    assert error_m > 0.05, "a fifth point off the fitted plane shows as an error"


def test_calibration_by_latitude_and_longitude_on_the_site_map(
    open_tab: OpenTab, bench: Bench, camera: Camera
) -> None:
    post_scene_map(bench, camera)
    tab = open_setup(open_tab, bench, camera)
    pick_points(tab)
    tab.get_by_label("latitude and longitude on the site map").check()
    site_map = tab.locator(".calibration-map")
    expect(site_map).to_be_visible()
    site_map.scroll_into_view_if_needed()
    box = site_map.bounding_box()
    assert box is not None
    for dx, dy in ((-80, -60), (80, -60), (100, 60), (-100, 60)):
        tab.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy)
    expect(site_map.locator("path.leaflet-interactive")).to_have_count(4)
    latitudes = [
        float(tab.get_by_label(f"Latitude of point {i}").input_value()) for i in range(1, 5)
    ]
    assert all(abs(lat - 52.52) < 0.01 for lat in latitudes), latitudes
    assert latitudes[0] > latitudes[3], "north is up on the map"
    tab.get_by_role("button", name="Fit calibration").click()
    expect(tab.locator(".calibration-result")).to_contain_text("Re-projection error: 0.00 m")
    tab.get_by_label("metres east and north of any fixed point").check()
    east = [float(tab.get_by_label(f"East (m) of point {i}").input_value()) for i in range(1, 5)]
    assert east[1] > east[0], "the API's metres: the second point lies east of the first"
    assert_no_image(tab)
