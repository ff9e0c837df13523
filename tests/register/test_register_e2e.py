"""The public register end to end: a real API (`python -m api serve`), a real worker (`python -m
detector run`) on a shared clip, and real Chromium.

The worker logs the request-body bytes its uplink sent (as httpx encoded them); the API counts
the bodies it received. The register must show exactly the worker's number. The browser then
reads the register map and the camera page as a citizen would, and the QR code of the camera's
sign, rendered by Chromium and decoded by OpenCV's QR detector, must lead to that page.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
import yaml
from playwright.sync_api import Browser, ConsoleMessage, Page

from contract import CountRow
from contract.examples import full_interval_report
from detector.software import describe_software
from tests.conftest import MODEL, VIDEO
from tests.dashboard.conftest import CSP_WATCH, LAPTOP
from tests.support.tally_api import TallyServer, add_site, register_camera, running_server

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not MODEL.is_file(), reason=f"offline model missing: {MODEL}"),
]

CLIP = VIDEO / "motorway_cctv_twoway_320x240.avi"
PUBLIC_SITE, CAMERA = "motorway", "motorway-cam"
PRIVATE_SITE, PRIVATE_CAMERA = "depot", "depot-cam"
PRIVATE_COUNT = 4711
INTERVAL_S = 10
UPLINK_LOG = re.compile(
    r"camera (?P<camera>\S+): uplink sent (?P<sent>\d+) body bytes in (?P<requests>\d+) requests;"
    r" the API stored (?P<stored>\d+) \(reports (?P<reports>\d+), heartbeats (?P<heartbeats>\d+)\)"
)


@dataclass(frozen=True)
class Run:
    """The server after the worker has run the clip once, and what the worker's log says."""

    server: TallyServer
    uplink: dict[str, int]
    log: str


def site_config(workdir: Path, token_file: Path) -> Path:
    """One camera on the motorway clip, a line across the right carriageway (the demo's)."""
    config: dict[str, Any] = {
        "site": PUBLIC_SITE,
        "model": {"path": str(MODEL), "backend": "torch", "imgsz": 320},
        "cameras": [
            {
                "id": CAMERA,
                "source": str(CLIP),
                "interval_seconds": INTERVAL_S,
                "max_detect_fps": 5,
                "lines": [
                    {
                        "name": "main",
                        "points": [[140 / 320, 130 / 240], [305 / 320, 130 / 240]],
                        "direction_names": {"down": "southbound", "up": "northbound"},
                    }
                ],
            }
        ],
        "uplink": {"token_file": str(token_file), "heartbeat_s": 5, "timeout_s": 10},
        "outbox": {"path": str(workdir / "outbox.db")},
    }
    path = workdir / "site.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def seed_private_camera(server: TallyServer, admin: httpx.Client) -> None:
    """A private, listed site whose camera reported once: its page must mask the numbers."""
    add_site(admin, PRIVATE_SITE, "Bus depot", 52.09, 5.13, public=False)
    token = register_camera(admin, PRIVATE_SITE, PRIVATE_CAMERA, 60)
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    row = CountRow(line="main", direction="northbound", vehicle_class="bus", count=PRIVATE_COUNT)
    report = full_interval_report(PRIVATE_CAMERA, start, [row])
    response = httpx.post(
        f"{server.base_url}/api/v1/reports",
        json={"reports": [report.model_dump(mode="json")]},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("register")
    software = describe_software(str(MODEL))
    approved = f'["{software.code_sha256}", "{software.model_sha256}"]'
    with running_server(workdir, settings={"TALLY_APPROVED_SOFTWARE": approved}) as server:
        with server.admin() as admin:
            add_site(admin, PUBLIC_SITE, "Motorway A12", 52.0907, 5.1214, road="A12", public=True)
            token = register_camera(admin, PUBLIC_SITE, CAMERA, INTERVAL_S)
            seed_private_camera(server, admin)
        token_file = workdir / "device-token"
        token_file.write_text(token + "\n", encoding="utf-8")
        config = site_config(workdir, token_file)
        command = [sys.executable, "-m", "detector", "-v", "run", "--config", str(config)]
        done = subprocess.run(
            [*command, "--api-url", server.base_url],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        log = done.stdout + done.stderr
        assert done.returncode == 0, log[-3000:]
        match = UPLINK_LOG.search(log)
        assert match is not None, log[-3000:]
        assert match["camera"] == CAMERA
        yield Run(server, {k: int(v) for k, v in match.groupdict().items() if k != "camera"}, log)


def public_json(run: Run, path: str) -> Any:
    response = httpx.get(f"{run.server.base_url}/api/v1/open/register{path}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_bytes_the_api_counted_are_the_bytes_the_uplink_sent(run: Run) -> None:
    uplink = run.uplink
    assert uplink["requests"] >= 3  # report batches and heartbeats
    assert uplink["sent"] == uplink["stored"]  # the API stored every request it answered
    assert uplink["reports"] > 0
    assert uplink["heartbeats"] > 0
    page = public_json(run, f"/cameras/{CAMERA}")
    assert page["bytes"]["last_24h"] == uplink["stored"]
    assert page["bytes"]["reports_24h"] == uplink["reports"]
    assert page["bytes"]["heartbeats_24h"] == uplink["heartbeats"]
    assert page["bytes"]["rounded"] is False
    listing = {c["camera_id"]: c for c in public_json(run, ".json")["cameras"]}
    assert listing[CAMERA]["bytes_sent_24h"] == uplink["stored"]
    stored = page["bytes"]["reports_stored_24h"]
    assert stored >= 3  # a 30-s clip in 10-s intervals
    assert page["bytes"]["per_report"] * stored == pytest.approx(uplink["reports"], abs=stored)


def test_the_camera_page_describes_the_real_worker(run: Run) -> None:
    page = public_json(run, f"/cameras/{CAMERA}")
    software = describe_software(str(MODEL))
    assert page["software"] | {"reported_at": None} == {
        "version": software.version,
        "code_sha256": software.code_sha256,
        "model_sha256": software.model_sha256,
        "approved": True,
        "reported_at": None,
    }
    assert (page["video"]["width"], page["video"]["height"]) == (320, 240)
    assert page["video"]["fps"] == pytest.approx(25.0)
    latest = page["latest_report"]
    assert latest["masked"] is False
    assert latest["body"]["camera_id"] == CAMERA
    assert page["last_report_at"] is not None
    assert page["validation"] is None
    private = public_json(run, f"/cameras/{PRIVATE_CAMERA}")
    assert private["latest_report"]["body"]["counts"][0]["count"] == "…"


@contextlib.contextmanager
def citizen_tab(browser: Browser, base_url: str) -> Iterator[Page]:
    """A signed-out tab that fails the test on any console error or CSP violation."""
    context = browser.new_context(viewport=LAPTOP, base_url=base_url, device_scale_factor=2)
    context.add_init_script(CSP_WATCH)
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    tab = context.new_page()
    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], "\n".join(errors)


@pytest.mark.browser
def test_the_register_map_and_table_list_the_cameras(run: Run, browser: Browser) -> None:
    with citizen_tab(browser, run.server.base_url) as tab:
        tab.goto("/register.html")
        tab.wait_for_selector("main[aria-busy='false']")
        assert tab.locator("#register-map .leaflet-interactive").count() == 2
        rows = tab.locator("table tbody tr")
        assert rows.count() == 2
        first = rows.filter(has_text=CAMERA)
        assert "Motorway A12" in first.inner_text()
        first.get_by_role("link", name=CAMERA).click()
        tab.wait_for_url(f"**/register.html?camera={CAMERA}")
        tab.wait_for_selector("main[aria-busy='false']")
        assert tab.locator("h1").inner_text() == CAMERA


@pytest.mark.browser
def test_the_camera_page_shows_what_it_sent_and_its_sign_leads_back_to_it(
    run: Run, browser: Browser, tmp_path: Path
) -> None:
    with citizen_tab(browser, run.server.base_url) as tab:
        tab.goto(f"/register.html?camera={CAMERA}")
        tab.wait_for_selector("main[aria-busy='false']")
        headline = tab.locator("#sent-headline").inner_text()
        assert "sent in the last 24 hours; a day of this video is about" in headline
        assert "GB" in headline
        report = tab.locator("#latest-report").inner_text()
        assert f'"camera_id": "{CAMERA}"' in report  # pretty-printed, as received
        assert "yes: an approved release" in tab.locator("#software").inner_text()
        assert "no validation recorded yet" in tab.locator("main").inner_text()
        page_url = tab.url
        sign = tab.locator("img#sign")
        sign.scroll_into_view_if_needed()
        tab.wait_for_function("document.querySelector('img#sign').complete")
        assert sign.get_attribute("src") == tab.locator("#sign-link").get_attribute("href")
        shot = tmp_path / "sign.png"
        sign.screenshot(path=str(shot))  # Chromium renders the SVG; twice the CSS pixels
    decoded, corners, _ = cv2.QRCodeDetector().detectAndDecode(cv2.imread(str(shot)))
    assert corners is not None, "no QR code found on the sign"
    assert decoded == page_url


@pytest.mark.browser
def test_a_private_cameras_page_masks_every_number(run: Run, browser: Browser) -> None:
    with citizen_tab(browser, run.server.base_url) as tab:
        tab.goto(f"/register.html?camera={PRIVATE_CAMERA}")
        tab.wait_for_selector("main[aria-busy='false']")
        report = tab.locator("#latest-report").inner_text()
        assert '"count": "…"' in report
        assert str(PRIVATE_COUNT) not in tab.content()
        assert "about" in tab.locator("#sent-headline").inner_text()
