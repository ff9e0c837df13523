"""The planner dashboard in real Chromium against a real, seeded API (see conftest.py)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Page

from tests.dashboard.conftest import SITE_TZ, OpenTab, Seeded

pytestmark = pytest.mark.browser
TABLET = {"width": 820, "height": 1180}


def open_app(page: Page, query: str) -> None:
    """Load the app and wait until the page and every chart on it have settled."""
    page.goto(f"/{query}")
    page.wait_for_selector("main[aria-busy='false']")
    page.wait_for_function("!document.querySelector('figure[data-state=loading]')")


def settle(page: Page) -> None:
    page.wait_for_selector("main[aria-busy='false']")
    page.wait_for_function("!document.querySelector('figure[data-state=loading]')")


def assert_not_blank(page: Page, path: Path) -> None:
    page.screenshot(path=path, full_page=True)
    with Image.open(path) as image:
        spread = ImageStat.Stat(image.convert("L")).stddev[0]
    assert spread > 10, f"{path.name} looks blank (grey-level stddev {spread:.1f})"


def table_of(page: Page, chart: str) -> list[list[str]]:
    """Open a chart's data table and read its rows (header row first)."""
    figure = page.locator(f"figure[data-chart='{chart}']")
    figure.locator("details summary").click()
    rows: list[list[str]] = figure.locator("table").evaluate(
        "t => [...t.rows].map(r => [...r.cells].map(c => c.textContent))"
    )
    return rows


def range_query(seeded: Seeded, page_name: str, **extra: str) -> str:
    params = {
        "page": page_name,
        "site": "high-st",
        "from": seeded.first_day.isoformat(),
        "to": seeded.last_full_day.isoformat(),
        **extra,
    }
    return "?" + "&".join(f"{k}={v}" for k, v in params.items())


def hourly_expected(seeded: Seeded, camera: str) -> dict[tuple[str, str], int]:
    """Vehicles per (local hour label, direction) from the reports that were posted."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for report in seeded.reports[camera]:
        local = report.interval_start.astimezone(SITE_TZ)
        if local.date() > seeded.last_full_day:
            continue
        for row in report.counts:
            totals[(local.strftime("%Y-%m-%d %H:00"), row.direction)] += row.count
    return totals


@pytest.mark.parametrize("page_name", ["overview", "site", "compare", "health", "open"])
def test_each_page_loads_without_errors_and_draws(
    page: Page, seeded: Seeded, tmp_path: Path, page_name: str
) -> None:
    open_app(page, range_query(seeded, page_name))
    assert page.locator("main").get_attribute("data-page") == page_name
    assert page.locator("figure[data-state='error'], .message.error").count() == 0
    assert page.locator("img").count() == 0, "the dashboard shows no imagery"
    assert_not_blank(page, tmp_path / f"{page_name}.png")


def test_counts_chart_shows_the_seeded_values_and_the_gap_as_a_gap(
    page: Page, seeded: Seeded
) -> None:
    open_app(page, range_query(seeded, "site", bucket="1h"))
    figure = page.locator("figure[data-chart='counts']")
    assert figure.get_attribute("data-points") == str(3 * 24)
    header, *rows = table_of(page, "counts")
    assert header[:2] == ["Start (local time)", "Coverage"]
    directions = [h.removeprefix("main ").split(" (")[0] for h in header[2:]]
    expected = hourly_expected(seeded, "cam-a")
    gap_hours = {f"{seeded.gap_day} {hour:02d}:00" for hour in range(10, 15)}
    for start, coverage, *values in rows:
        for direction, shown in zip(directions, values, strict=True):
            if start in gap_hours:
                assert (coverage, shown) == ("0 %", "no data"), start
            else:
                assert shown.replace(",", "") == str(expected[(start, direction)]), start
    assert rows[0][0] == f"{seeded.first_day} 00:00", "times are in the site's timezone"
    note = figure.locator(".gap-note")
    assert f"{seeded.gap_day} 10:00 – {seeded.gap_day} 15:00" in note.inner_text()


def test_bucketing_changes_the_series_and_the_url(page: Page, seeded: Seeded) -> None:
    open_app(page, range_query(seeded, "site", bucket="1h"))
    counts = page.locator("figure[data-chart='counts']")
    for bucket, points in (("15min", 3 * 96), ("1d", 3), ("1h", 3 * 24)):
        page.select_option("select[name='bucket']", bucket)
        settle(page)
        assert counts.get_attribute("data-points") == str(points)
        assert parse_qs(urlparse(page.url).query)["bucket"] == [bucket]


def test_state_survives_a_reload(page: Page, seeded: Seeded) -> None:
    open_app(page, range_query(seeded, "site", bucket="1d"))
    page.select_option("select[name='site']", "mill-rd")
    settle(page)
    before = page.url
    page.reload()
    settle(page)
    assert page.url == before
    assert page.locator("h1").inner_text() == "Mill Road"
    assert page.input_value("select[name='bucket']") == "1d"
    assert page.input_value("input[name='from']") == seeded.first_day.isoformat()
    assert page.locator("figure[data-chart='counts']").get_attribute("data-points") == "3"


def test_csv_download_matches_the_api(page: Page, seeded: Seeded) -> None:
    first, last = seeded.first_day, seeded.last_full_day
    open_app(page, range_query(seeded, "open"))
    with page.expect_download() as download:
        page.click("a[data-csv='high-st-1h']")
    downloaded = Path(download.value.path()).read_bytes()
    expected = httpx.get(
        f"{seeded.base_url}/api/v1/open/sites/high-st/counts.csv",
        params={
            "granularity": "1h",
            "from": f"{first}T00:00:00Z",
            "to": f"{last + timedelta(days=1)}T00:00:00Z",
        },
    )
    assert expected.status_code == 200
    assert downloaded == expected.content
    assert downloaded.count(b"\n") > 100
    assert page.locator("a[data-csv^='mill-rd']").count() == 0, "private sites are not offered"


def test_health_page_shows_device_state_and_marks_the_gap(page: Page, seeded: Seeded) -> None:
    open_app(page, range_query(seeded, "health"))
    never_seen = page.locator("tr", has_text="cam-b2").inner_text().split("\t")
    assert never_seen[2:4] == ["never", "never"], "status and last seen"
    hourly = page.locator("figure[data-chart='hourly-cam-a']")
    assert (
        f"{seeded.gap_day} 10:00 – {seeded.gap_day} 15:00"
        in hourly.locator(".gap-note").inner_text()
    )
    _header, *days = table_of(page, "daily-cam-a")
    shares = {row[0]: row[1] for row in days}
    assert shares[str(seeded.gap_day)] == f"{round(19 / 24 * 1000) / 10} %"
    assert shares[str(seeded.first_day)] == "100 %"


def summary(seeded: Seeded, site: str, first: date, last: date) -> dict[str, Any]:
    with seeded.server.admin() as admin:
        response = admin.get(
            "/api/v1/counts/summary",
            params={
                "site": site,
                "from": f"{first}T00:00:00",
                "to": f"{last + timedelta(days=1)}T00:00:00",
            },
        )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def test_compare_two_sites_side_by_side(page: Page, seeded: Seeded) -> None:
    first, last = seeded.first_day, seeded.last_full_day
    open_app(page, range_query(seeded, "compare", site2="mill-rd", from2=str(first), to2=str(last)))
    _header, vehicles, *_ = page.locator("table").first.evaluate(
        "t => [...t.rows].map(r => [...r.cells].map(c => c.textContent))"
    )
    a, b = summary(seeded, "high-st", first, last), summary(seeded, "mill-rd", first, last)
    assert vehicles[1:3] == [f"{a['total']:,}", f"{b['total']:,}"]
    for key in ("compare-A", "compare-B"):
        assert page.locator(f"figure[data-chart='{key}']").get_attribute("data-state") == "ready"


def test_overview_maps_every_site_with_latest_totals(page: Page, seeded: Seeded) -> None:
    open_app(page, "?page=overview")
    assert page.locator(".map path.leaflet-interactive").count() == 2
    with seeded.server.admin() as admin:
        sites = admin.get("/api/v1/sites").json()["sites"]
    text = page.locator("table").inner_text()
    for site in sites:
        assert f"{site['totals_24h']['count']:,}" in text
    page.get_by_role("link", name="Mill Road").click()
    settle(page)
    assert page.locator("h1").inner_text() == "Mill Road"


def test_tablet_and_keyboard(open_tab: OpenTab, seeded: Seeded, tmp_path: Path) -> None:
    tab = open_tab(seeded.accounts["viewer"], viewport=TABLET)
    open_app(tab, range_query(seeded, "site"))
    assert tab.evaluate("document.documentElement.scrollWidth") <= TABLET["width"]
    tab.keyboard.press("Tab")
    assert tab.evaluate("document.activeElement.className") == "skip-link"
    tab.get_by_role("link", name="Data health").focus()
    tab.keyboard.press("Enter")
    settle(tab)
    assert tab.locator("main").get_attribute("data-page") == "health"
    assert_not_blank(tab, tmp_path / "tablet-health.png")


def test_a_range_without_data_shows_empty_states(page: Page, seeded: Seeded) -> None:
    before = seeded.first_day - timedelta(days=30)
    open_app(page, f"?page=site&site=high-st&from={before}&to={before + timedelta(days=6)}")
    states = page.locator("figure").evaluate_all("fs => fs.map(f => f.dataset.state)")
    assert states
    assert set(states) == {"empty"}
    assert page.locator(".card-value").first.inner_text() == "no data"
