"""The README's first command, ``python -m tally_demo``, end to end on real processes.

The demo starts the API on SQLite, registers its intersection camera (a gate per leg, the
intersection layout, a zone and a calibration from ``tally_demo/intersection.yaml``) and a
login through the admin CLI, runs a real worker over the real intersection clip and serves the
dashboard. The test reads the demo's own progress lines, signs in with the login the demo
printed, checks that the dashboard's printed range holds turning movements, congestion and
speeds, stops it like Ctrl-C does, and checks it stops cleanly with the counts delivered.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from queue import Empty, Queue
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Browser

from tests.conftest import MODEL, REPO_ROOT, VIDEO

CLIP = VIDEO / "urban_intersection_640x480.mp4"
GATES = ["north", "east", "south", "west"]
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not MODEL.is_file(), reason=f"offline model missing: {MODEL}"),
]


def lines_of(process: subprocess.Popen[str]) -> Queue[str]:
    """The demo's stdout, line by line, read on a thread so waits can time out."""
    lines: Queue[str] = Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for(lines: Queue[str], pattern: str, seen: list[str], timeout_s: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except Empty:
            continue
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"no line matching {pattern!r}; the demo said:\n" + "\n".join(seen))


def day_range(dashboard_url: str) -> dict[str, str]:
    """The API range of the local days a dashboard URL shows (from and to are days)."""
    query = parse_qs(urlparse(dashboard_url).query)
    last = date.fromisoformat(query["to"][0]) + timedelta(days=1)
    return {"from": f"{query['from'][0]}T00:00:00", "to": f"{last}T00:00:00"}


def intersection_view_arrows(browser: Browser, url: str, email: str, password: str) -> int:
    """Signs in as the demo admin in headless Chromium, opens the printed link (the
    intersection view) and returns how many movement arrows its diagram draws."""
    base_url = url.split("/?")[0]
    context = browser.new_context(base_url=base_url)
    try:
        login = context.request.post(
            "/api/v1/auth/login", data={"email": email, "password": password}
        )
        assert login.status == 200, login.text()
        tab = context.new_page()
        tab.goto(url)
        tab.wait_for_selector("main[aria-busy='false']")
        tab.wait_for_selector("table.tmc")
        return tab.locator("svg.intersection-diagram .movement").count()
    finally:
        context.close()


def test_the_demo_counts_movements_on_a_real_clip_and_serves_the_dashboard(
    tmp_path: Path, browser: Browser
) -> None:
    inputs = ["--clip", str(CLIP), "--model", str(MODEL), "--data-dir", str(tmp_path)]
    process = subprocess.Popen(
        [sys.executable, "-m", "tally_demo", "--plays", "2", "--port", "0", *inputs],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        lines = lines_of(process)
        dashboard_url = wait_for(lines, r"dashboard (http://\S+)", seen, 90).group(1)
        base_url = dashboard_url.split("/?")[0]
        email, password = wait_for(lines, r"login\s+(\S+)\s+password\s+(\S+)", seen, 10).groups()
        wait_for(lines, r"worker finished the clip", seen, 240)
        with httpx.Client(base_url=base_url, timeout=10) as planner:
            assert planner.get("/api/v1/sites").status_code == 401
            login = {"email": email, "password": password}
            assert planner.post("/api/v1/auth/login", json=login).json()["role"] == "admin"
            sites = planner.get("/api/v1/sites").json()["sites"]
            shown = {"camera": "demo-cam", **day_range(dashboard_url)}
            tmc = planner.get("/api/v1/movements/tmc", params=shown).json()
            zones = planner.get("/api/v1/zones/series", params={**shown, "bucket": "1h"}).json()
        assert [site["id"] for site in sites] == ["demo-site"]
        assert parse_qs(urlparse(dashboard_url).query)["page"] == ["intersection"]
        dashboard = httpx.get(dashboard_url, timeout=10)
        assert dashboard.status_code == 200
        assert "<html" in dashboard.text.lower()
        arrows = intersection_view_arrows(browser, dashboard_url, email, password)
        process.send_signal(signal.SIGINT)
        stopped = wait_for(
            lines,
            r"stopped cleanly; reports delivered: (\d+), line crossings: (\d+),"
            r" vehicles through the intersection: (\d+)",
            seen,
            60,
        )
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reports, crossings, turned = (int(n) for n in stopped.groups())
    assert reports >= 1, "two plays of a 30-s clip span at least one 60-s interval"
    assert tmc["layout"], "the demo camera declares its intersection layout"
    assert [leg["gate"] for leg in tmc["legs"]] == GATES
    named = {m["movement"] for m in tmc["movements"] if m["total"]}
    assert tmc["intersection"]["total"] == turned >= 1, "the dashboard's range has movements"
    assert named - {None}, f"movements named from the layout, got {named}"
    assert turned <= crossings, "a vehicle through the intersection crossed its gates"
    drawn = sum(1 for m in tmc["movements"] if m["total"])
    assert arrows == drawn >= 1, "the browser draws an arrow per movement the API counted"
    speeds = [h for s in zones["series"] for h in s["speed_histogram"] if h]
    assert speeds, "the calibrated zone measured vehicle speeds"
    written = {path.name for path in tmp_path.rglob("*") if path.is_file()}
    assert not {name for name in written if name.endswith((".jpg", ".jpeg", ".png", ".mp4"))}
