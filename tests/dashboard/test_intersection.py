"""The intersection view and the congestion charts in real Chromium against a real API.

A server of this module holds one four-way intersection camera (gates north/east/south/west,
an intersection layout with their bearings, a calibrated zone) and three hours of version-2
reports with turning movements, unmatched vehicles and zone speed histograms, queues and
densities, with one 15-minute gap. The tests compare what the page shows with what the API
serves and with sums of the reports that were posted.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from contract import (
    CountRow,
    Health,
    IntervalReport,
    MovementRow,
    UnmatchedRow,
    VehicleClass,
    ZoneRow,
    interval_report_id,
)
from contract.planning import Intersection
from tests.dashboard.conftest import Account, OpenTab, add_account
from tests.support.tally_api import TallyServer, add_site, running_server

pytestmark = pytest.mark.browser
TZ = ZoneInfo("Europe/Berlin")
INTERVAL_S = 300
HOSTILE = '<img src=x onerror="window.__xss=1">'
GATES = {"north": 0.0, "east": 90.0, "south": 180.0, "west": 270.0}
LAYOUT = Intersection.model_validate(
    {"legs": [{"gate": g, "bearing_deg": b} for g, b in GATES.items()]}
)
RATES = {
    ("north", "south"): 9,
    ("north", "east"): 3,
    ("north", "west"): 2,
    ("south", "north"): 8,
    ("south", "west"): 4,
    ("east", "west"): 6,
    ("east", "south"): 2,
    ("west", "east"): 5,
    ("west", "north"): 3,
    ("west", "west"): 1,
}
"""Vehicles per 5 minutes at the peak, per (origin, destination); other pairs see none."""
MIX: dict[VehicleClass, float] = {"car": 0.8, "truck": 0.12, "bus": 0.08}


def setup_body() -> dict[str, Any]:
    """The camera's set-up: a gate per leg, the layout, a calibrated zone."""
    spots = {
        "north": [[0.3, 0.1], [0.6, 0.1]],
        "east": [[0.9, 0.3], [0.9, 0.6]],
        "south": [[0.4, 0.9], [0.7, 0.9]],
        "west": [[0.1, 0.4], [0.1, 0.7]],
    }
    return {
        "lines": [
            {"name": g, "points": p, "direction_names": {"down": "in", "up": "out"}}
            for g, p in spots.items()
        ],
        "zones": [
            {
                "name": "box",
                "polygon": [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]],
                "lanes": 2,
                "length_m": 30.0,
            }
        ],
        "calibration": {
            "image_points": [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]],
            "ground_points_m": [[0, 0], [30, 0], [30, 30], [0, 30]],
        },
        "interval_seconds": INTERVAL_S,
        "intersection": LAYOUT.model_dump(),
    }


def load(moment: datetime) -> float:
    """Share of the peak rate: rising to 08:15 local and falling after."""
    local = moment.astimezone(TZ)
    hours = local.hour + local.minute / 60 - 8.25
    return max(0.2, 1 - abs(hours) / 2)


def by_class(total: int) -> dict[VehicleClass, int]:
    """`total` split by MIX, deterministically, summing to `total`."""
    trucks, buses = round(total * MIX["truck"]), round(total * MIX["bus"])
    return {"car": total - trucks - buses, "truck": trucks, "bus": buses}


def report(camera: str, start: datetime) -> IntervalReport:
    share = load(start)
    movements = [
        MovementRow(
            origin=o,
            destination=d,
            movement=LAYOUT.movement(o, d),
            vehicle_class=c,
            count=n,
        )
        for (o, d), rate in RATES.items()
        for c, n in by_class(round(rate * share)).items()
        if n
    ]
    unmatched = [UnmatchedRow(gate="east", vehicle_class="car", count=1)]
    crossings: dict[tuple[str, str, VehicleClass], int] = defaultdict(int)
    for m in movements:
        crossings[(m.origin, "in", m.vehicle_class)] += m.count
        crossings[(m.destination, "out", m.vehicle_class)] += m.count
    for u in unmatched:
        crossings[(u.gate, "in", u.vehicle_class)] += u.count
    vehicles = sum(m.count for m in movements)
    speed = 45 - 30 * share
    histogram = [0] * 14
    histogram[int(speed // 10)] = vehicles - 2
    histogram[int(speed // 10) + 1] = 2
    return IntervalReport(
        report_id=interval_report_id(camera, start),
        camera_id=camera,
        interval_start=start,
        interval_seconds=INTERVAL_S,
        partial=False,
        coverage=1.0,
        frames_processed=INTERVAL_S * 10,
        fps=10.0,
        counts=[
            CountRow(line=line, direction=direction, vehicle_class=c, count=n)
            for (line, direction, c), n in sorted(crossings.items())
        ],
        zones=[
            ZoneRow(
                zone="box",
                mean_vehicles=round(2 + 6 * share, 2),
                max_vehicles=3 + int(8 * share),
                occupancy_time=round(0.2 + 0.6 * share, 3),
                occupancy_area=round(0.1 + 0.3 * share, 3),
                mean_speed_kmh=round(speed, 1),
                p85_speed_kmh=round(speed + 8, 1),
                speed_histogram=histogram,
                stopped_share=round(0.4 * share, 3),
                queue_vehicles=round(5 * share, 2),
                queue_m=round(32 * share, 1),
                density_veh_km_lane=round(20 + 30 * share, 1),
                density_pcu_km_lane=round(24 + 36 * share, 1),
                los="ABCDEF"[min(5, int(share * 6))],  # type: ignore[arg-type]
            )
        ],
        health=Health(reconnects=0, dropped_reports=0),
        config_version=2,
        movements=movements,
        unmatched=unmatched,
    )


@dataclass(frozen=True)
class Crossroads:
    """The module's server, what was posted, and a viewer."""

    server: TallyServer
    day: str
    reports: list[IntervalReport]
    gap: tuple[datetime, datetime]
    viewer: Account

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def query(self, page: str = "intersection", **extra: str) -> str:
        params = {"page": page, "site": "cross-st", "from": self.day, "to": self.day, **extra}
        return "?" + "&".join(f"{k}={v}" for k, v in params.items())

    def api(self, path: str, **params: str) -> httpx.Response:
        """GET as the viewer, on the day the reports fill (site-local midnights)."""
        window = {"camera": "cam-x", "from": f"{self.day}T00:00:00", "to": f"{self.day}T23:59:59"}
        with self.server.log_in(self.viewer.email, self.viewer.password) as client:
            response = client.get(path, params={**window, **params})
        response.raise_for_status()
        return response


@pytest.fixture(scope="module")
def crossroads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crossroads]:
    day = (datetime.now(TZ) - timedelta(days=1)).date()
    first = datetime(day.year, day.month, day.day, 7, tzinfo=TZ).astimezone(UTC)
    gap = (first + timedelta(minutes=105), first + timedelta(minutes=120))
    starts = [first + timedelta(seconds=INTERVAL_S * i) for i in range(3 * 3600 // INTERVAL_S)]
    with running_server(tmp_path_factory.mktemp("crossroads")) as server, server.admin() as admin:
        add_site(
            admin,
            "cross-st",
            HOSTILE,
            52.52,
            13.40,
            road="Ring",
            timezone="Europe/Berlin",
            public=True,
        )
        setup = setup_body()
        camera = {
            "id": "cam-x",
            "site_id": "cross-st",
            "name": HOSTILE,
            "interval_seconds": INTERVAL_S,
            "lines": [
                {"name": x["name"], "direction_names": x["direction_names"]} for x in setup["lines"]
            ],
            "zones": [{"name": "box", "lanes": 2, "length_m": 30.0}],
        }
        admin.post("/api/v1/admin/cameras", json=camera).raise_for_status()
        admin.put("/api/v1/cameras/cam-x/config", json={"setup": setup}).raise_for_status()
        token = admin.post("/api/v1/admin/cameras/cam-x/tokens").json()["token"]
        reports = [report("cam-x", s) for s in starts if not gap[0] <= s < gap[1]]
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as device:
            body = {"reports": [r.model_dump(mode="json") for r in reports]}
            device.post("/api/v1/reports", json=body).raise_for_status()
        viewer = add_account(admin, "viewer@cross.example.org", "Vic Viewer", "viewer")
        yield Crossroads(server, day.isoformat(), reports, gap, viewer)


def open_view(tab: Page, query: str) -> None:
    tab.goto(f"/{query}")
    tab.wait_for_selector("main[aria-busy='false']")
    tab.wait_for_function("!document.querySelector('figure[data-state=loading]')")


def footer(tab: Page, label: str) -> list[str]:
    """The cells of one footer row of the TMC table (after its label and first cell)."""
    row = tab.locator("table.tmc tfoot tr", has=tab.locator("th", has_text=label)).first
    cells: list[str] = row.locator("td").all_inner_texts()
    return cells[1:]


def posted_totals(
    reports: list[IntervalReport], cls: str | None = None
) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for r in reports:
        for m in r.movements:
            if cls is None or m.vehicle_class == cls:
                totals[(m.origin, m.destination)] += m.count
    return totals


def test_the_diagram_draws_an_arrow_per_movement_sized_by_volume(
    open_tab: OpenTab, crossroads: Crossroads
) -> None:
    tab = open_tab(crossroads.viewer, base_url=crossroads.base_url)
    open_view(tab, crossroads.query())
    arrows = tab.locator("svg.intersection-diagram .movement")
    posted = posted_totals(crossroads.reports)
    drawn = {
        (a.get_attribute("data-origin"), a.get_attribute("data-destination")): int(
            a.get_attribute("data-count") or 0
        )
        for a in arrows.all()
    }
    assert drawn == {pair: n for pair, n in posted.items() if n}
    widths = {
        (a.get_attribute("data-origin"), a.get_attribute("data-destination")): float(
            a.locator("path").get_attribute("stroke-width") or 0
        )
        for a in arrows.all()
    }
    assert widths[("north", "south")] > widths[("north", "west")] > 0
    expect(arrows.filter(has=tab.locator("title", has_text="west → west (U-turn)"))).to_have_count(
        1
    )
    expect(tab.locator(".movement-left")).not_to_have_count(0)
    legs = tab.locator("svg.intersection-diagram .leg-label").all_text_contents()
    assert [label.split(" ")[0] for label in legs] == list(GATES)


def test_the_tmc_table_matches_the_api_with_peak_hour_and_phf(
    open_tab: OpenTab, crossroads: Crossroads
) -> None:
    tab = open_tab(crossroads.viewer, base_url=crossroads.base_url)
    open_view(tab, crossroads.query())
    tmc = crossroads.api("/api/v1/movements/tmc").json()
    peak = crossroads.api("/api/v1/movements/peak-hour").json()
    posted = posted_totals(crossroads.reports)
    for m in tmc["movements"]:
        assert m["total"] == posted.get((m["origin"], m["destination"]), 0)
    expected = {f"{m['origin']} → {m['destination']}": m["total"] for m in tmc["movements"]}
    expected |= {f"{a['origin']}, every movement": a["total"] for a in tmc["approaches"]}
    expected["Intersection"] = tmc["intersection"]["total"]
    titles = (
        tab.locator("table.tmc thead tr")
        .nth(1)
        .locator("th[title]")
        .evaluate_all("cells => cells.map(c => c.title)")
    )
    shown = [int(cell.replace(",", "")) for cell in footer(tab, "Total")]
    assert dict(zip([*titles, "Intersection"], shown, strict=True)) == expected
    assert tmc["intersection"]["total"] == sum(posted.values())
    gap_rows = tab.locator("table.tmc tbody tr.gap")
    expect(gap_rows).to_have_count(3)  # before the first report, the gap, after the last
    expect(gap_rows.nth(1)).to_contain_text("no data")
    hour = peak["peak_hour"]
    assert hour is not None
    phf = footer(tab, "PHF")
    assert phf[-1] == f"{peak['intersection']['phf']:.2f}"
    expect(tab.locator(".card", has_text="Peak-hour factor")).to_contain_text(f"{hour['phf']:.2f}")
    expect(tab.locator(".card", has_text="Peak hour").first).to_contain_text(
        f"{hour['volume']:,} vehicles"
    )
    expect(tab.locator("table.tmc tbody tr.in-peak")).to_have_count(4)
    assert footer(tab, "Peak hour")[-1].replace(",", "") == str(hour["volume"])


def test_the_class_filter_changes_the_numbers(open_tab: OpenTab, crossroads: Crossroads) -> None:
    tab = open_tab(crossroads.viewer, base_url=crossroads.base_url)
    open_view(tab, crossroads.query())
    everything = footer(tab, "Total")[-1]
    tab.get_by_label("Vehicle class").select_option("truck")
    expect(tab).to_have_url(re.compile(r"[?&]class=truck(&|$)"))
    tab.wait_for_selector("main[aria-busy='false']")
    trucks = sum(posted_totals(crossroads.reports, "truck").values())
    expect(tab.locator("table.tmc tfoot tr").first.locator("td").last).to_have_text(f"{trucks:,}")
    assert footer(tab, "Total")[-1] != everything
    api = crossroads.api("/api/v1/movements/tmc", vehicle_class="truck").json()
    assert api["intersection"]["total"] == trucks
    expect(tab.locator("table.tmc caption")).to_contain_text("truck only")


@pytest.mark.parametrize(
    ("key", "first_lines"),
    [
        ("tmc-csv", ["interval_start,interval_end,coverage,origin,destination,movement,count"]),
        ("utdf-15min", ["Turning Movement Count", "15 Minute Counts"]),
        ("utdf-60min", ["Turning Movement Count", "60 Minute Counts"]),
    ],
)
def test_downloads_give_the_csv_and_utdf_files(
    open_tab: OpenTab, crossroads: Crossroads, key: str, first_lines: list[str]
) -> None:
    tab = open_tab(crossroads.viewer, base_url=crossroads.base_url)
    open_view(tab, crossroads.query())
    with tab.expect_download() as download:
        tab.locator(f"a[data-download='{key}']").click()
    path = download.value.path()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert [line.strip().strip(",") for line in lines[: len(first_lines)]] == first_lines
    if key == "tmc-csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        total = sum(int(r["count"]) for r in rows if r["count"])
        assert total == sum(posted_totals(crossroads.reports).values())
    else:
        assert len(lines) > 3, "a row per covered bin"


def test_congestion_charts_draw_the_speed_histogram_queue_and_density(
    open_tab: OpenTab, crossroads: Crossroads
) -> None:
    tab = open_tab(crossroads.viewer, base_url=crossroads.base_url)
    open_view(tab, crossroads.query("site", bucket="15min"))
    for chart in ("speed-histogram", "queue", "queue-m", "density"):
        figure = tab.locator(f"figure[data-chart='{chart}']")
        expect(figure).to_have_attribute("data-state", "ready")
    figure = tab.locator("figure[data-chart='speed-histogram']")
    figure.locator("details summary").click()
    expect(figure.locator("tbody tr")).to_have_count(14)  # one per speed bin
    rows = figure.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    histograms = [r.zones[0].speed_histogram or [] for r in crossroads.reports]
    merged = [sum(bins) for bins in zip(*histograms, strict=True)]
    shown = [int(cells[1].replace(",", "")) for cells in rows]
    assert shown == merged, "vehicles per speed bin, merged over the range"


def test_hostile_names_are_text_on_the_intersection_page(
    open_tab: OpenTab, crossroads: Crossroads
) -> None:
    tab = open_tab(crossroads.viewer, base_url=crossroads.base_url)
    open_view(tab, crossroads.query())
    expect(tab.locator("h1")).to_have_text(HOSTILE)
    expect(tab.locator(".page-head p")).to_contain_text(HOSTILE)
    assert tab.evaluate("window.__xss") is None
    assert tab.locator("main img, main script").count() == 0


def test_hourly_bins_keep_the_totals(open_tab: OpenTab, crossroads: Crossroads) -> None:
    tab = open_tab(crossroads.viewer, base_url=crossroads.base_url)
    open_view(tab, crossroads.query(bin="1h"))
    expect(tab.locator("table.tmc")).to_have_attribute("data-bins", "24")
    expect(tab.get_by_label("Bin")).to_have_value("1h")
    starts = tab.locator("table.tmc tbody tr:not(.gap) th").all_inner_texts()
    assert starts, "hours with data"
    assert all(start.endswith(":00") for start in starts)
    total = sum(posted_totals(crossroads.reports).values())
    assert footer(tab, "Total")[-1] == f"{total:,}"
    link = tab.locator("a[data-download='tmc-csv']").get_attribute("href") or ""
    assert "bin=1h" in link


def test_open_data_offers_the_turning_movement_feed(
    open_tab: OpenTab, crossroads: Crossroads
) -> None:
    tab = open_tab(crossroads.viewer, base_url=crossroads.base_url)
    open_view(tab, crossroads.query("open"))
    with tab.expect_download() as download:
        tab.locator("a[data-csv='cross-st-movements-1h']").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert {(r["origin"], r["destination"]) for r in rows} == set(posted_totals(crossroads.reports))
