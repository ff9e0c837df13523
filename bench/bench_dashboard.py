"""Dashboard benchmark: first load, and rendering a year of hourly counts, in real Chromium.

A real API on loopback is seeded with one camera reporting hourly for a year (8,760 reports;
the server's ingest window is widened to take them). Timings are medians of a few cold page
loads (fresh browser context each time, signed in as a viewer before the clock starts). The
year render is also given as a ratio to fetching the same series JSON straight from the API in
the same run, so the figure says what the browser adds on top of the server.

    python bench/bench_dashboard.py            # prints JSON, writes bench/results/dashboard.json
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.dashboard.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    LAPTOP,
    Account,
    add_account,
    sign_in,
)
from tests.support.tally_api import (  # noqa: E402
    SeedCamera,
    add_site,
    post_history,
    register_camera,
    running_server,
)

RUNS = 3
HOUR_S = 3600
TZ = ZoneInfo("Europe/Berlin")
SETTLED = (
    "() => document.querySelector('main')?.getAttribute('aria-busy') === 'false'"
    " && !document.querySelector('figure[data-state=loading]')"
)


def timed_load(browser: Browser, base_url: str, account: Account, query: str) -> float:
    """Seconds from navigation to a settled page (all charts drawn), in a cold context."""
    context = browser.new_context(viewport=LAPTOP, base_url=base_url)
    sign_in(context, account)
    page = context.new_page()
    started = time.perf_counter()
    page.goto(f"/{query}")
    page.wait_for_function(SETTLED, timeout=120_000)
    elapsed = time.perf_counter() - started
    context.close()
    return elapsed


def main() -> dict[str, float]:
    now = datetime.now(UTC)
    end = datetime.fromtimestamp(now.timestamp() // HOUR_S * HOUR_S, UTC)
    start = end - timedelta(days=365)
    camera = SeedCamera("cam-y", start, end, HOUR_S, TZ, 1.0)
    today = now.astimezone(TZ).date()
    first = today - timedelta(days=364)
    year = f"?page=site&site=year-st&from={first}&to={today}&bucket=1h"
    os.environ["TALLY_INGEST_MAX_AGE_DAYS"] = "400"  # this process starts only this server
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp)) as server:
        with server.admin() as admin:
            add_site(admin, "year-st", "Year Street", 52.5, 13.4, timezone="Europe/Berlin")
            viewer = add_account(admin, "bench@example.org", "Bench Viewer", "viewer")
            seed_started = time.perf_counter()
            post_history(
                server.base_url, register_camera(admin, "year-st", "cam-y", HOUR_S), camera
            )
            seed_s = time.perf_counter() - seed_started
        api_s = []
        for _ in range(RUNS):
            with server.admin() as admin:
                started = time.perf_counter()
                admin.get(
                    "/api/v1/counts/series",
                    params={
                        "site": "year-st",
                        "bucket": "1h",
                        "group_by": "line,direction",
                        "from": f"{first}T00:00:00",
                        "to": f"{today + timedelta(days=1)}T00:00:00",
                    },
                ).raise_for_status()
                api_s.append(time.perf_counter() - started)
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            base = server.base_url
            overview = [timed_load(browser, base, viewer, "?page=overview") for _ in range(RUNS)]
            week_q = "?page=site&site=year-st"
            week = [timed_load(browser, base, viewer, week_q) for _ in range(RUNS)]
            year_s = [timed_load(browser, base, viewer, year) for _ in range(RUNS)]
            browser.close()
    results = {
        "seed_8760_reports_s": round(seed_s, 2),
        "first_load_overview_s": round(statistics.median(overview), 3),
        "first_load_site_7_days_s": round(statistics.median(week), 3),
        "year_site_page_1h_s": round(statistics.median(year_s), 3),
        "year_series_api_only_s": round(statistics.median(api_s), 3),
    }
    results["year_page_over_api_ratio"] = round(
        results["year_site_page_1h_s"] / results["year_series_api_only_s"], 2
    )
    return results


if __name__ == "__main__":
    figures = main()
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "dashboard.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
