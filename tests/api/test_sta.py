"""SensorThings API (issue #12): mapping, resource paths, query options, small-count
suppression and public-only reads, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from api_testkit import settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from readkit import SiteSpec, create_site, post, recent_hour, report, seed_rollups
from sqlalchemy import Engine
from test_disclosure import Dataset, an_hour, finest_cells, reports_of, twin

from api.app import create_app
from api.db import make_engine, make_session_factory, session_scope
from api.schemas import CameraIn, LineIn, SiteIn
from api.services import registry
from api.services.disclosure import Published, effective_threshold, summed
from api.services.rollups import RollupDelta
from api.services.sta import reads
from api.services.sta.context import Context
from api.services.sta.options import MAX_TOP, parse_options
from api.settings import Settings
from contract import VEHICLE_CLASSES

ROOT = "/sta/v1.1"
MAIN = {"main": {"up": "northbound", "down": "southbound"}}
CAR_N, BUS_S, TRUCK_N = (
    ("main", "northbound", "car"),
    ("main", "southbound", "bus"),
    (
        "main",
        "northbound",
        "truck",
    ),
)
QUARTERS, GAP_HOUR, QUIET, HALF = 24, 3, 5, 1
"""Six hours of 15-minute reports; hour 3 is a gap (no report), quarter 5 watched an empty
road, quarter 1 watched half its interval."""
MAX_S = 86400


def stamp(moment: datetime | int) -> str:
    if isinstance(moment, int):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def quarter_counts(q: int) -> dict[tuple[str, str, str], int]:
    if q == QUIET:
        return {}
    counts = {CAR_N: q % 6, BUS_S: 7 if q % 2 == 0 else 0}
    return counts | ({TRUCK_N: 2} if q == 0 else {})


@dataclass(frozen=True)
class Seeded:
    site: str
    camera: str
    private_site: str
    private_camera: str
    start: datetime

    def datastream(self, key: tuple[str, str, str], level: str) -> str:
        line, direction, vehicle_class = key
        return f"{self.camera}:{line}:{direction}:{level}:{vehicle_class}"

    def quarter(self, q: int) -> datetime:
        return self.start + timedelta(minutes=15 * q)


def seed(client: TestClient, settings: Settings) -> Seeded:
    site, cams = create_site(settings, SiteSpec({"a": MAIN}))
    private, private_cams = create_site(settings, SiteSpec({"p": MAIN}, public=False))
    start = recent_hour(8)
    camera, hidden = cams["a"], private_cams["p"]
    reports = [
        report(
            camera.camera,
            start + timedelta(minutes=15 * q),
            quarter_counts(q),
            coverage=0.5 if q == HALF else 1.0,
        )
        for q in range(QUARTERS)
        if q // 4 != GAP_HOUR
    ]
    post(client, camera, reports)
    post(client, hidden, [report(hidden.camera, start, {CAR_N: 40})])
    return Seeded(site, camera.camera, private, hidden.camera, start)


@pytest.fixture(scope="module")
def seeded(app: FastAPI) -> Seeded:
    with TestClient(app) as client:
        return seed(client, app.state.settings)


def get(client: TestClient, path: str, status: int = 200, **params: str) -> Any:
    response = client.get(ROOT + path, params=params)
    assert response.status_code == status, (path, params, response.text[:500])
    if response.headers["content-type"].startswith("text/plain"):
        return response.text
    return response.json()


def every(client: TestClient, path: str, **params: str) -> list[dict[str, Any]]:
    """A collection, following @iot.nextLink to the end as a client does."""
    body = get(client, path, **params)
    found = list(body["value"])
    while "@iot.nextLink" in body:
        response = client.get(body["@iot.nextLink"].removeprefix("http://testserver"))
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["value"]
    return found


def expected_quarters(seeded: Seeded, key: tuple[str, str, str]) -> list[tuple[int, int, int]]:
    """(start, end, count) of every watched 15-minute bucket of `key`, without suppression."""
    return [
        (int(seeded.quarter(q).timestamp()), int(seeded.quarter(q).timestamp()) + 900, c)
        for q in range(QUARTERS)
        if q // 4 != GAP_HOUR
        for c in [quarter_counts(q).get(key, 0)]
    ]


def interval(observation: dict[str, Any]) -> tuple[int, int]:
    start, end = observation["phenomenonTime"].split("/")
    return (
        int(datetime.fromisoformat(start).timestamp()),
        int(datetime.fromisoformat(end).timestamp()),
    )


def observed(observations: list[dict[str, Any]]) -> list[tuple[int, int, int | None]]:
    return [(*interval(o), o["result"]) for o in observations]


# --- service root and mapping --------------------------------------------------------------

SETS = (
    "Datastreams",
    "FeaturesOfInterest",
    "HistoricalLocations",
    "Locations",
    "Observations",
    "ObservedProperties",
    "Sensors",
    "Things",
)
CONFORMANCE = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
)


def test_service_root_lists_the_sets_the_conformance_and_the_licence(
    app: FastAPI, client: TestClient
) -> None:
    body = get(client, "")
    assert [v["name"] for v in body["value"]] == list(SETS)
    assert all(v["url"] == f"http://testserver{ROOT}/{v['name']}" for v in body["value"])
    assert set(CONFORMANCE) <= set(body["serverSettings"]["conformance"])
    settings = app.state.settings
    assert body["licence"] == {"id": settings.open_licence_id, "url": settings.open_licence_url}
    assert body["attribution"] == settings.open_attribution
    assert get(client, "/") == body


def test_a_site_maps_to_thing_location_sensor_and_datastreams(
    client: TestClient, seeded: Seeded
) -> None:
    thing = get(client, f"/Things('{seeded.site}')", **{"$expand": "Locations"})
    assert thing["@iot.id"] == seeded.site
    assert thing["@iot.selfLink"] == f"http://testserver{ROOT}/Things('{seeded.site}')"
    assert thing["properties"]["licence"]["id"] == "CC-BY-4.0"
    assert thing["properties"]["attribution"] == "Contains traffic counts from Tally"
    assert thing["Datastreams@iot.navigationLink"].endswith(f"Things('{seeded.site}')/Datastreams")
    (location,) = thing["Locations"]
    assert location["encodingType"] == "application/geo+json"
    assert location["location"] == {"type": "Point", "coordinates": [-0.1, 51.5]}
    sensor = get(client, f"/Sensors('{seeded.camera}')")
    assert "crosses the line" in sensor["metadata"]
    streams = every(client, f"/Things('{seeded.site}')/Datastreams")
    # one line, its renamed pair of directions, 3 aggregation levels, all-classes + 5 classes
    assert len(streams) == 2 * 3 * 6
    assert {s["properties"]["direction"] for s in streams} == {"northbound", "southbound"}
    car = get(client, f"/Datastreams('{seeded.datastream(CAR_N, '1h')}')")
    assert car["observationType"].endswith("OM_CountObservation")
    assert car["unitOfMeasurement"]["symbol"] == "veh"
    assert car["properties"] | {"camera": None} == {
        "camera": None,
        "line": "main",
        "direction": "northbound",
        "aggregation": "1h",
        "aggregationSeconds": 3600,
        "vehicleClass": "car",
        "layerName": "car_1h",
    }
    kinds = every(client, "/ObservedProperties")
    assert [k["@iot.id"] for k in kinds] == sorted(["vehicles", *VEHICLE_CLASSES])


def test_a_line_with_no_renamed_pair_lists_all_four_directions(app: FastAPI) -> None:
    site, _ = create_site(app.state.settings, SiteSpec({"a": {"main": {}}}))
    with TestClient(app) as client:
        streams = every(client, f"/Things('{site}')/Datastreams", **{"$select": "properties"})
    assert {s["properties"]["direction"] for s in streams} == {"down", "up", "left", "right"}


# --- resource paths ------------------------------------------------------------------------

PATHS: list[tuple[str, int, Callable[[Any, Seeded], bool]]] = [
    ("/Things('{site}')/Datastreams", 200, lambda b, s: len(b["value"]) == 36),
    ("/Things('{site}')/Locations('{site}')", 200, lambda b, s: b["@iot.id"] == s.site),
    ("/Things('{site}')/HistoricalLocations", 200, lambda b, s: "time" in b["value"][0]),
    ("/Locations('{site}')/Things", 200, lambda b, s: b["value"][0]["@iot.id"] == s.site),
    ("/Datastreams('{ds}')/Thing", 200, lambda b, s: b["@iot.id"] == s.site),
    ("/Datastreams('{ds}')/Sensor", 200, lambda b, s: b["@iot.id"] == s.camera),
    ("/Datastreams('{ds}')/ObservedProperty", 200, lambda b, s: b["@iot.id"] == "car"),
    ("/Datastreams('{ds}')/Thing/Locations", 200, lambda b, s: len(b["value"]) == 1),
    ("/Sensors('{camera}')/Datastreams", 200, lambda b, s: len(b["value"]) == 36),
    ("/FeaturesOfInterest('{site}')", 200, lambda b, s: b["feature"]["type"] == "Point"),
    ("/HistoricalLocations('{site}')/Thing", 200, lambda b, s: b["@iot.id"] == s.site),
    ("/Things('{site}')/name", 200, lambda b, s: b == {"name": f"Site {s.site[5:]}"}),
    ("/Things('{site}')/name/$value", 200, lambda b, s: b == f"Site {s.site[5:]}"),
    ("/Datastreams('{ds}')/properties/$value", 200, lambda b, s: '"layerName"' in b),
    (
        "/Things('{site}')/Datastreams/$ref",
        200,
        lambda b, s: set(b["value"][0]) == {"@iot.selfLink"},
    ),
    ("/Things('{site}')/$ref", 200, lambda b, s: b["@iot.selfLink"].endswith(f"('{s.site}')")),
    ("/Things({site})", 200, lambda b, s: b["@iot.id"] == s.site),  # unquoted, leniently
    ("/Things('nope')", 404, lambda b, s: b["type"] == "error"),
    ("/Things('{site}')/Nope", 404, lambda b, s: "Nope" in b["message"]),
    ("/Nope", 404, lambda b, s: True),
    ("/Datastreams('{camera}:main')", 404, lambda b, s: True),
    ("/Datastreams('{camera}:main:northbound:2h:car')", 404, lambda b, s: True),
    ("/Observations('{ds}:notanumber')", 404, lambda b, s: True),
    ("/Observations('{ds}:²')", 404, lambda b, s: True),
    ("/Observations('{ds}:99999999999999999999')", 404, lambda b, s: True),
    ("/Things('{private}')/Datastreams('{ds}')", 404, lambda b, s: True),
    ("/Things('{site}')/Datastreams('{camera}:main:northbound:1h:bus')", 200, lambda b, s: True),
    ("/Datastreams('{ds}')/Thing('{site}')", 404, lambda b, s: True),
    ("/Things('{site}')/name/$value/x", 404, lambda b, s: True),
]


@pytest.mark.parametrize(("template", "status", "check"), PATHS)
def test_resource_paths(
    client: TestClient,
    seeded: Seeded,
    template: str,
    status: int,
    check: Callable[[Any, Seeded], bool],
) -> None:
    path = template.format(
        site=seeded.site,
        camera=seeded.camera,
        private=seeded.private_site,
        ds=seeded.datastream(CAR_N, "1h"),
    )
    assert check(get(client, path, status), seeded)


# --- observations --------------------------------------------------------------------------


def test_gaps_are_absent_and_a_watched_empty_road_is_zero(
    client: TestClient, seeded: Seeded
) -> None:
    found = every(client, f"/Datastreams('{seeded.datastream(CAR_N, '15min')}')/Observations")
    assert observed(found) == expected_quarters(seeded, CAR_N)
    starts = {interval(o)[0] for o in found}
    gap = [int(seeded.quarter(q).timestamp()) for q in range(12, 16)]
    assert not starts & set(gap)
    quiet = next(o for o in found if interval(o)[0] == int(seeded.quarter(QUIET).timestamp()))
    assert quiet["result"] == 0
    half = next(o for o in found if interval(o)[0] == int(seeded.quarter(HALF).timestamp()))
    assert half["resultQuality"] == {"coverage": 0.5, "suppressed": False}


def totals_by(size: int, rows: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    buckets: dict[int, int] = defaultdict(int)
    for start, _, count in rows:
        buckets[start - start % size] += count
    return [(start, start + size, n) for start, n in sorted(buckets.items())]


@pytest.mark.parametrize("level", ["1h", "1d"])
@pytest.mark.parametrize("key", [CAR_N, BUS_S, ("main", "northbound", "vehicles")])
def test_hours_days_and_all_classes_are_sums(
    client: TestClient, seeded: Seeded, level: str, key: tuple[str, str, str]
) -> None:
    if key[2] == "vehicles":
        quarters = [
            (start, end, a + b)
            for (start, end, a), (_, _, b) in zip(
                expected_quarters(seeded, CAR_N),
                expected_quarters(seeded, TRUCK_N),
                strict=True,
            )
        ]
    else:
        quarters = expected_quarters(seeded, key)
    found = every(client, f"/Datastreams('{seeded.datastream(key, level)}')/Observations")
    assert observed(found) == totals_by(3600 if level == "1h" else 86400, quarters)
    assert {o["parameters"]["sumOf"] for o in found} <= {None, "15min", "1h"}


def feed_rows(client: TestClient, seeded: Seeded, granularity: str) -> dict[Any, Any]:
    window = {
        "from": seeded.start.isoformat(),
        "to": (seeded.start + timedelta(hours=6)).isoformat(),
    }
    response = client.get(
        f"/api/v1/open/sites/{seeded.site}/counts.json",
        params=window | {"granularity": granularity},
    )
    assert response.status_code == 200, response.text
    return {
        (r["line"], r["direction"], r["vehicle_class"], r["interval_start"]): (
            r["count"],
            r["suppressed"],
            r["coverage"],
        )
        for r in response.json()["rows"]
    }


@pytest.fixture(scope="module", params=[0, 5])
def feeds_app(request: pytest.FixtureRequest, database_url: str) -> Iterator[TestClient]:
    """An app publishing without suppression, and one withholding counts from 1 to 4."""
    settings = settings_for(database_url, open_min_count=request.param)
    with TestClient(create_app(settings)) as client:
        yield client


def test_observations_publish_exactly_what_the_open_feed_publishes(
    feeds_app: TestClient,
) -> None:
    """Per class, at 15 minutes and 1 hour, every count, withheld flag and coverage the
    open-data feed publishes is the observation's result, resultQuality and nothing else."""
    app: FastAPI = feeds_app.app  # type: ignore[assignment]
    seeded = seed(feeds_app, app.state.settings)
    for level, granularity in (("15min", "15min"), ("1h", "1h")):
        feed = feed_rows(feeds_app, seeded, granularity)
        keys = {k[:3] for k in feed}
        sta = {}
        for key in keys:
            for o in every(
                feeds_app, f"/Datastreams('{seeded.datastream(key, level)}')/Observations"
            ):
                quality = o["resultQuality"]
                start = stamp(interval(o)[0])
                sta[(*key, start)] = (o["result"], quality["suppressed"], quality["coverage"])
        assert sta == feed, level


def test_withheld_counts_stay_withheld_in_sums(feeds_app: TestClient) -> None:
    """All-classes and daily observations are sums of the published cells: with suppression,
    the truck's withheld 2 is neither in the vehicles total nor in the day."""
    app: FastAPI = feeds_app.app  # type: ignore[assignment]
    threshold = effective_threshold(app.state.settings.open_min_count)
    seeded = seed(feeds_app, app.state.settings)

    def published(key: tuple[str, str, str], level: str) -> dict[int, Published]:
        path = f"/Datastreams('{seeded.datastream(key, level)}')/Observations"
        return {
            interval(o)[0]: Published(o["result"], o["resultQuality"]["suppressed"])
            for o in every(feeds_app, path)
        }

    classes = {c: published(("main", "northbound", c), "15min") for c in VEHICLE_CLASSES}
    everything = published(("main", "northbound", "vehicles"), "15min")
    for start, total in everything.items():
        assert total == summed(classes[c][start] for c in VEHICLE_CLASSES)
    first = int(seeded.start.timestamp())
    assert everything[first].suppressed is bool(threshold)
    hours = published(("main", "northbound", "vehicles"), "1h")
    for start, day in published(("main", "northbound", "vehicles"), "1d").items():
        assert day == summed(h for s, h in hours.items() if start <= s < start + MAX_S)


# --- $filter on observations -----------------------------------------------------------------

Row = tuple[int, int, int]
T1_Q = 9  # a quarter in the second hour


def moment(seeded: Seeded, q: int) -> int:
    return int(seeded.quarter(q).timestamp())


def year(moment_s: int) -> int:
    return datetime.fromtimestamp(moment_s, UTC).year


FILTERS: list[tuple[str, Callable[[Row, int, Seeded], bool]]] = [
    ("result gt 3", lambda r, t, s: r[2] > 3),
    ("result ge 3 and result lt 5", lambda r, t, s: 3 <= r[2] < 5),
    ("result eq 0 or result eq 5", lambda r, t, s: r[2] in (0, 5)),
    ("not (result gt 2)", lambda r, t, s: not r[2] > 2),
    ("result in (1, 2)", lambda r, t, s: r[2] in (1, 2)),
    ("result ne 1", lambda r, t, s: r[2] != 1),
    ("result add 1 eq 3", lambda r, t, s: r[2] + 1 == 3),
    ("result sub 1 eq 3", lambda r, t, s: r[2] - 1 == 3),
    ("result mul 2 gt 7", lambda r, t, s: r[2] * 2 > 7),
    ("result div 2 gt 1.6", lambda r, t, s: r[2] / 2 > 1.6),
    ("result mod 2 eq 1", lambda r, t, s: r[2] % 2 == 1),
    ("-result lt -3", lambda r, t, s: -r[2] < -3),
    (
        "(result gt 1 or result eq 0) and not (result eq 4)",
        lambda r, t, s: r[2] != 4 and (r[2] > 1 or r[2] == 0),
    ),
    ("phenomenonTime ge {t1}", lambda r, t, s: r[0] >= t),
    ("phenomenonTime gt {t1}", lambda r, t, s: r[0] > t),
    ("phenomenonTime lt {t1}", lambda r, t, s: r[1] <= t and r[0] < t),
    ("phenomenonTime le {t1}", lambda r, t, s: r[1] <= t),
    ("phenomenonTime eq {t1}", lambda r, t, s: False),
    ("{t1} le phenomenonTime", lambda r, t, s: r[0] >= t),
    ("resultTime eq {t1}", lambda r, t, s: r[1] == t),
    (
        "resultTime gt {t1} and resultTime le {t1} add duration'PT30M'",
        lambda r, t, s: t < r[1] <= t + 1800,
    ),
    (
        "resultTime ge now() sub duration'PT5H'",
        lambda r, t, s: r[1] >= datetime.now(UTC).timestamp() - 5 * 3600,
    ),
    ("hour(phenomenonTime) eq {hour}", lambda r, t, s: r[0] % 86400 // 3600 == t % 86400 // 3600),
    ("minute(phenomenonTime) eq 15", lambda r, t, s: r[0] % 3600 // 60 == 15),
    ("second(resultTime) eq 0", lambda r, t, s: True),
    (
        "year(phenomenonTime) eq {year} and month(resultTime) ge 1",
        lambda r, t, s: year(r[0]) == year(t),
    ),
    (
        "day(phenomenonTime) eq {day}",
        lambda r, t, s: datetime.fromtimestamp(r[0], UTC).day == datetime.fromtimestamp(t, UTC).day,
    ),
    ("date(phenomenonTime) eq {date}", lambda r, t, s: r[0] // 86400 == t // 86400),
    ("time(phenomenonTime) ge {time}", lambda r, t, s: r[0] % 86400 >= t % 86400),
    ("phenomenonTime ge mindatetime() and phenomenonTime lt maxdatetime()", lambda r, t, s: True),
    ("resultQuality/coverage lt 1", lambda r, t, s: r[0] == moment(s, HALF)),
    ("resultQuality/suppressed eq false", lambda r, t, s: True),
    ("resultQuality/suppressed", lambda r, t, s: False),
    ("parameters/aggregation eq '15min'", lambda r, t, s: True),
    ("parameters/nope eq 'x'", lambda r, t, s: False),
    ("id eq '{ds}:{t1s}'", lambda r, t, s: r[0] == t),
    ("Datastream/id eq '{ds}'", lambda r, t, s: True),
    ("Datastream/Thing/name eq 'Site {suffix}'", lambda r, t, s: True),
    ("Datastream/ObservedProperty/id eq 'bus'", lambda r, t, s: False),
    ("startswith(Datastream/name, 'Cars per 15')", lambda r, t, s: True),
    ("FeatureOfInterest/id eq '{site}' and result gt 4", lambda r, t, s: r[2] > 4),
    (
        "st_within(FeatureOfInterest/feature, geography'POLYGON((-1 51,1 51,1 52,-1 52,-1 51))')",
        lambda r, t, s: True,
    ),
]


@pytest.mark.parametrize(("expression", "keep"), FILTERS)
def test_filters_on_observations(
    client: TestClient,
    seeded: Seeded,
    expression: str,
    keep: Callable[[Row, int, Seeded], bool],
) -> None:
    t1 = moment(seeded, T1_Q)
    when = datetime.fromtimestamp(t1, UTC)
    text = expression.format(
        t1=stamp(t1),
        t1s=t1,
        hour=when.hour,
        year=when.year,
        day=when.day,
        date=when.date().isoformat(),
        time=when.strftime("%H:%M:%S"),
        ds=seeded.datastream(CAR_N, "15min"),
        site=seeded.site,
        suffix=seeded.site[5:],
    )
    path = f"/Datastreams('{seeded.datastream(CAR_N, '15min')}')/Observations"
    found = observed(every(client, path, **{"$filter": text}))
    assert found == [r for r in expected_quarters(seeded, CAR_N) if keep(r, t1, seeded)]


# --- other query options --------------------------------------------------------------------


def test_paging_ordering_count_and_select(client: TestClient, seeded: Seeded) -> None:
    path = f"/Datastreams('{seeded.datastream(CAR_N, '15min')}')/Observations"
    expected = expected_quarters(seeded, CAR_N)
    first = get(client, path, **{"$top": "5", "$count": "true"})
    assert first["@iot.count"] == len(expected)
    assert "$skip=5" in first["@iot.nextLink"]
    assert observed(every(client, path, **{"$top": "5"})) == expected
    ordered = every(client, path, **{"$orderby": "result desc,phenomenonTime", "$top": "7"})
    assert observed(ordered) == sorted(expected, key=lambda r: (-r[2], r[0]))
    newest = get(client, path, **{"$orderby": "phenomenonTime desc", "$top": "2", "$skip": "1"})
    assert observed(newest["value"]) == expected[::-1][1:3]
    picked = get(client, path, **{"$select": "result,@iot.id", "$top": "1"})["value"][0]
    assert set(picked) == {"result", "@iot.id"}
    last = get(client, path, **{"$skip": str(len(expected))})
    assert last["value"] == []
    assert "@iot.nextLink" not in last
    none = get(client, path, **{"$top": "0", "$count": "true"})
    assert none == {"@iot.count": len(expected), "value": []}
    assert parse_options({"$top": "20000"}).top == MAX_TOP


def test_nested_expand_applies_its_options_to_each_parent(
    client: TestClient, seeded: Seeded
) -> None:
    expand = (
        "Datastreams($filter=properties/layerName eq 'car_1h';$orderby=id;"
        "$expand=Observations($orderby=phenomenonTime desc;$top=2;$count=true;$select=result))"
    )
    thing = get(client, f"/Things('{seeded.site}')", **{"$expand": expand})
    north, south = thing["Datastreams"]
    assert [s["properties"]["direction"] for s in (north, south)] == ["northbound", "southbound"]
    hours = totals_by(3600, expected_quarters(seeded, CAR_N))
    assert [o["result"] for o in north["Observations"]] == [h[2] for h in hours[::-1][:2]]
    assert north["Observations@iot.count"] == len(hours)
    rest = client.get(north["Observations@iot.nextLink"].removeprefix("http://testserver"))
    assert [o["result"] for o in rest.json()["value"]] == [h[2] for h in hours[::-1][2:4]]
    shorthand = get(client, f"/Things('{seeded.site}')", **{"$expand": "Datastreams/Thing"})
    assert all(d["Thing"]["@iot.id"] == seeded.site for d in shorthand["Datastreams"])
    assert len(shorthand["Datastreams"]) == 36
    paged = get(client, f"/Things('{seeded.site}')", **{"$expand": "Datastreams($top=30)"})
    assert len(paged["Datastreams"]) == 30
    assert "$skip=30" in paged["Datastreams@iot.nextLink"]


def test_filters_on_registry_entities(client: TestClient, seeded: Seeded) -> None:
    site = seeded.site
    cases = {
        f"/Things?$filter=id eq '{site}' and properties/road eq 'A1'": 1,
        f"/Things?$filter=startswith(Things/name,'Site {site[5:]}')": 1,
        f"/Things?$filter=id eq '{site}' and Datastreams/properties/layerName eq 'car_1d'": 1,
        f"/Things?$filter=id eq '{site}' and Datastreams/Observations/result gt 6": 1,
        f"/Things?$filter=id eq '{site}' and Datastreams/Observations/result gt 700": 0,
        f"/Things?$filter=id eq '{site}' and not (Datastreams/name eq 'x')": 1,
        f"/Things?$filter=id eq '{site}' and substringof('{site[5:]}', name)": 1,
        f"/Things?$filter=id eq '{site}' and tolower(toupper(name)) eq tolower(name)": 1,
        f"/Things?$filter=id eq '{site}' and length(id) eq {len(site)}": 1,
        f"/Things?$filter=id eq '{site}' and indexof(id, '-') eq 4": 1,
        f"/Things?$filter=id eq '{site}' and substring(id, 5) eq '{site[5:]}'": 1,
        f"/Things?$filter=id eq '{site}' and concat(id, 'x') eq '{site}x'": 1,
        f"/Things?$filter=id eq '{site}' and contains(name, '%')": 0,
        f"/Sensors?$filter=Datastreams/Thing/id eq '{site}'": 1,
        f"/Datastreams?$filter=Thing/id eq '{site}' and ObservedProperty/name eq 'Cars'": 6,
        f"/Datastreams?$filter=Sensor/id eq '{seeded.camera}'"
        " and properties/aggregationSeconds eq 900": 12,
        f"/Locations?$filter=Things/id eq '{site}'": 1,
        f"/HistoricalLocations?$filter=id eq '{site}' and time lt now()": 1,
        f"/FeaturesOfInterest?$filter=Observations/Datastream/Thing/id eq '{site}'": 1,
        "/ObservedProperties?$filter=properties/vehicleClass eq 'all'": 1,
    }
    for url, count in cases.items():
        path, query = url.split("?", 1)
        name, value = query.split("=", 1)
        found = get(client, path, **{name: value, "$count": "true"})
        assert found["@iot.count"] == count, url


def place(settings: Settings, lon: float, lat: float, public: bool = True) -> str:
    site = f"geo-{uuid.uuid4().hex[:8]}"
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            registry.create_site(
                session, SiteIn(id=site, name=site, lat=lat, lon=lon, public=public)
            )
    finally:
        engine.dispose()
    return site


def square(lon: float, lat: float, half: float) -> str:
    x0, x1, y0, y1 = lon - half, lon + half, lat - half, lat + half
    return f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"


SPATIAL = [
    ("st_within(Locations/location, geography'{box}')", {"inner"}),
    ("st_within(Locations/location, geography'SRID=4326;{box}')", {"inner"}),
    ("st_intersects(Locations/location, geography'{big}')", {"inner", "outer"}),
    ("geo.intersects(Locations/location, geography'{big}')", {"inner", "outer"}),
    ("st_contains(geography'{big}', Locations/location)", {"inner", "outer"}),
    ("st_disjoint(Locations/location, geography'{box}')", {"outer"}),
    ("st_equals(Locations/location, geography'POINT({lon} {lat})')", {"inner"}),
    ("st_relate(Locations/location, geography'{box}', 'T*F**F***')", {"inner"}),
    ("geo.distance(Locations/location, geography'POINT({lon} {lat})') lt 0.5", {"inner"}),
    ("geo.length(geography'LINESTRING(0 0, 3 4)') eq 5", {"inner", "outer"}),
    ("st_within(Locations/location, geography'{box}') or name eq '{outer}'", {"inner", "outer"}),
]


@pytest.mark.parametrize(("expression", "expected"), SPATIAL)
def test_spatial_filters_on_site_points(
    app: FastAPI, client: TestClient, expression: str, expected: set[str]
) -> None:
    lon, lat = random.uniform(100, 170), random.uniform(-60, -10)
    settings = app.state.settings
    sites = {
        "inner": place(settings, lon, lat),
        "outer": place(settings, lon + 2, lat),
        "private": place(settings, lon, lat, public=False),
    }
    text = expression.format(
        box=square(lon, lat, 0.5),
        big=square(lon + 1, lat, 3),
        lon=lon,
        lat=lat,
        outer=sites["outer"],
    )
    mine = " or ".join(f"id eq '{s}'" for s in sites.values())
    found = every(client, "/Things", **{"$filter": f"({mine}) and ({text})"})
    assert {t["@iot.id"] for t in found} == {sites[k] for k in expected}
    located = every(
        client, "/Locations", **{"$filter": f"({mine}) and ({text.replace('Locations/', '')})"}
    )
    assert {t["@iot.id"] for t in located} == {sites[k] for k in expected}


ERRORS = [
    ("/Things", {"$filter": "name eq"}, "$filter"),
    ("/Things", {"$filter": "nope eq 3"}, "no property 'nope'"),
    ("/Things", {"$filter": "name eq 3"}, "cannot compare"),
    ("/Things", {"$filter": "name"}, "must be a condition"),
    ("/Things", {"$filter": "Datastreams eq 3"}, "is an entity"),
    ("/Things", {"$filter": "properties eq 'x'"}, "single value"),
    ("/Things", {"$filter": "Datastreams/any(d: d/name eq 'x')"}, "any()"),
    ("/Things", {"$filter": "st_within(name, geography'POINT(1 2)')"}, "location property"),
    ("/Things", {"$filter": "st_within(Locations/location, geography'POLYGON((1 2')"}, "WKT"),
    ("/Things", {"$filter": "st_within(Locations/location)"}, "2 arguments"),
    ("/Things", {"$filter": "frobnicate(name)"}, "frobnicate"),
    ("/Observations", {"$filter": "phenomenonTime gt 'yesterday'"}, "time interval"),
    (
        "/Observations",
        {"$filter": "year(result) eq 2024 and year(parameters/aggregation) eq 1"},
        "time",
    ),
    ("/Things", {"$orderby": "Datastreams/name"}, "$orderby"),
    ("/Things", {"$orderby": "name sideways"}, "$orderby"),
    ("/Things", {"$top": "-1"}, "$top"),
    ("/Things", {"$skip": "x"}, "$skip"),
    ("/Things", {"$count": "yes"}, "$count"),
    ("/Things", {"$resultFormat": "dataArray"}, "not supported"),
    ("/Things", {"$frobnicate": "1"}, "unknown query option"),
    ("/Things", {"$expand": "Nope"}, "Nope"),
    ("/Things", {"$expand": "Datastreams($top=1"}, "parenthesis"),
    ("/Things", {"$expand": "Datastreams($top)"}, "name=value"),
    ("/Things", {"$select": "nope"}, "nope"),
]


@pytest.mark.parametrize(("path", "params", "message"), ERRORS)
def test_bad_queries_get_a_400_saying_why(
    client: TestClient, seeded: Seeded, path: str, params: dict[str, str], message: str
) -> None:
    body = get(client, path, 400, **params)
    assert body["code"] == 400
    assert body["type"] == "error"
    assert message in body["message"]


def test_a_response_over_the_entity_bound_is_refused(database_url: str) -> None:
    settings = settings_for(database_url, open_max_rows=100)
    with TestClient(create_app(settings)) as client:
        found = seed(client, settings)
        path = f"/Things('{found.site}')"
        assert len(get(client, path, **{"$expand": "Datastreams($top=30)"})["Datastreams"]) == 30
        body = get(client, path, 400, **{"$expand": "Datastreams($expand=Observations)"})
        assert "$top" in body["message"]


# --- public sites only ---------------------------------------------------------------------


def test_private_sites_are_never_published(client: TestClient, seeded: Seeded) -> None:
    private, camera = seeded.private_site, seeded.private_camera
    for path in (
        f"/Things('{private}')",
        f"/Locations('{private}')",
        f"/FeaturesOfInterest('{private}')",
        f"/HistoricalLocations('{private}')",
        f"/Sensors('{camera}')",
        f"/Datastreams('{camera}:main:northbound:15min:car')",
        f"/Observations('{camera}:main:northbound:15min:car:{int(seeded.start.timestamp())}')",
        f"/Things('{private}')/Datastreams",
    ):
        get(client, path, 404)
    for path, filter_ in (
        ("/Things", f"id eq '{private}'"),
        ("/Locations", f"id eq '{private}'"),
        ("/Sensors", f"id eq '{camera}'"),
        ("/Datastreams", f"properties/camera eq '{camera}'"),
        ("/Observations", f"startswith(id, '{camera}:')"),
        ("/ObservedProperties", f"Datastreams/Sensor/id eq '{camera}'"),
    ):
        assert get(client, path, **{"$filter": filter_, "$count": "true"})["@iot.count"] == 0, path
    listed = every(client, "/Sensors", **{"$top": "1000", "$select": "id"})
    assert camera not in {s["@iot.id"] for s in listed}


# --- time windows ------------------------------------------------------------------------


def test_newest_and_oldest_first_reach_data_of_any_age(app: FastAPI, client: TestClient) -> None:
    """Ordered by time, observations are read through widening windows: the answer is the
    same as without them (resultTime order is not windowed), however old the data."""
    settings = app.state.settings
    site, cams = create_site(settings, SiteSpec({"a": MAIN, "b": MAIN}))
    now = recent_hour(1)
    ages = {"a": [0, 3, 40, 300, 1500], "b": [1400, 1500]}
    seed_rollups(
        settings,
        [
            report(cams[k].camera, now - timedelta(days=d, hours=h), {CAR_N: 10 + d % 7 + h})
            for k, days in ages.items()
            for d in days
            for h in (0, 1)
        ],
    )
    for key in ("a", "b"):
        path = f"/Datastreams('{cams[key].camera}:main:northbound:1h:car')/Observations"
        for order, reference in (("desc", "resultTime desc"), ("asc", "resultTime asc")):
            for skip in ("0", "1", "3"):
                params = {"$top": "2", "$skip": skip}
                windowed = get(client, path, **params, **{"$orderby": f"phenomenonTime {order}"})
                plain = get(client, path, **params, **{"$orderby": reference})
                assert windowed["value"] == plain["value"], (key, order, skip)
                assert ("@iot.nextLink" in windowed) is ("@iot.nextLink" in plain)
    expand = (
        "Datastreams($filter=properties/layerName eq 'car_1h' and properties/direction eq "
        "'northbound';$expand=Observations($orderby=phenomenonTime desc;$top=2;$skip=1))"
    )
    things = get(client, f"/Things('{site}')", **{"$expand": expand})
    for stream in things["Datastreams"]:
        plain = get(
            client,
            f"/Datastreams('{stream['@iot.id']}')/Observations",
            **{"$orderby": "resultTime desc", "$top": "2", "$skip": "1"},
        )
        assert stream["Observations"] == plain["value"]
    assert len(things["Datastreams"]) == 2


# --- disclosure, proved over random data -----------------------------------------------------


def everything_published(ctx: Context, site: str, suffix: str) -> str:
    """Every observation of the site at every level and property, and what a few filters on
    the published values return, with the site's ids made comparable."""
    expand = "Datastreams($top=1000;$expand=Observations($top=10000))"
    parts = [reads.answer(ctx, f"Things('{site}')", {"$expand": expand})]
    observations = f"FeaturesOfInterest('{site}')/Observations"
    for text in ("result ge 1 or result eq null", "resultQuality/suppressed"):
        params = {"$filter": text, "$top": "10000", "$orderby": "result desc"}
        parts.append(reads.answer(ctx, observations, params))
    return repr(parts).replace(suffix, "x")


def sta_published(engine: Engine, settings: Settings, dataset: Dataset, start: datetime) -> str:
    """What the SensorThings API publishes about a fresh site holding `dataset`."""
    suffix = uuid.uuid4().hex[:8]
    site = f"p-{suffix}"
    cameras = [f"c{n}-{suffix}" for n in range(len(dataset))]
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        registry.create_site(session, SiteIn(id=site, name="P", lat=1.0, lon=2.0, public=True))
        for camera in cameras:
            line = LineIn(name="main", direction_names=MAIN["main"])
            registry.register_camera(
                session, CameraIn(id=camera, site_id=site, interval_seconds=900, lines=[line])
            )
        delta = RollupDelta()
        for one in reports_of(cameras, dataset, start):
            delta.add(one, gates=1)  # each camera has one line
        delta.apply(session)
    with sessions() as session:
        ctx = Context(session, settings, "http://x/sta/v1.1", int(datetime.now(UTC).timestamp()))
        return everything_published(ctx, site, suffix)


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    """One engine for the module: its compiled-statement cache is what keeps a server fast."""
    found = make_engine(database_url)
    yield found
    found.dispose()


NORTH_CAR, SOUTH_CAR, SOUTH_BUS = CAR_N, ("main", "southbound", "car"), BUS_S


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    dataset=st.lists(st.lists(an_hour, min_size=1, max_size=2), min_size=1, max_size=1),
    min_count=st.sampled_from([3, 5]),
)
@example(
    dataset=[
        [
            (
                "quarters",
                {NORTH_CAR: [2, 0, 5, 0], SOUTH_CAR: [1, 1, 6, 8], SOUTH_BUS: [9, 9, 9, 1]},
            ),
            ("mixed", {NORTH_CAR: [1, 0, 0], SOUTH_CAR: [3, 2, 0], SOUTH_BUS: [0, 0, 4]}),
        ]
    ],
    min_count=5,
)
@example(
    dataset=[
        [
            ("hour", {NORTH_CAR: [2], SOUTH_CAR: [0], SOUTH_BUS: [12]}),
            ("gap", {NORTH_CAR: [], SOUTH_CAR: [], SOUTH_BUS: []}),
        ]
    ],
    min_count=3,
)
def test_no_withheld_cell_can_be_worked_out_from_the_observations(
    engine: Engine, database_url: str, dataset: Dataset, min_count: int
) -> None:
    """Every withheld finest cell can be changed to another withheld value without changing
    one byte of the observations (every level, class and all-classes total, and filters and
    orderings on the published values): none of them pins a withheld count."""
    config = settings_for(database_url, open_min_count=min_count)
    threshold = effective_threshold(min_count)
    start = recent_hour(4)
    original = sta_published(engine, config, dataset, start)
    for c, h, key, i, value in finest_cells(dataset):
        if 0 < value < threshold:
            other = value % (threshold - 1) + 1
            changed = sta_published(engine, config, twin(dataset, c, h, key, i, other), start)
            assert changed == original, (c, h, key, i, value, other)


# --- hostile input -----------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "result",
        "phenomenonTime",
        "name",
        "id",
        "properties/road",
        "Datastreams",
        "Locations/location",
        "Datastream/Thing/name",
        " eq ",
        " gt ",
        " and ",
        " or ",
        "not ",
        " add ",
        " div ",
        "(",
        ")",
        ",",
        ";",
        "'x'",
        "''",
        "3",
        "-1.5e3",
        "null",
        "true",
        "2026-03-02T08:00:00Z",
        "2026-03-02",
        "12:00:00",
        "duration'PT1H'",
        "now()",
        "year(",
        "st_within(",
        "geo.distance(",
        "geography'POINT(1 2)'",
        "geography'POLYGON((0 0'",
        "length(",
        "round(",
        " in ",
        "$top=1",
        "$expand=",
        "Observations",
        "/",
        "desc",
        "any(",
        "99999999999999999999",
        "%",
        "\\",
        "\x00",
        "é",
    ]
)
hostile_text = st.one_of(st.text(max_size=40), st.lists(FRAGMENTS, max_size=8).map("".join))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(
        ["/Things", "/Observations", "/Datastreams", "/Locations", "/Things('x')/Datastreams"]
    ),
    option=st.sampled_from(["$filter", "$orderby", "$expand", "$select", "$top", "$skip"]),
    value=hostile_text,
)
def test_hostile_query_options_get_a_clear_answer_never_a_500(
    app: FastAPI, path: str, option: str, value: str
) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(ROOT + path, params={option: value, "$top": "2"} | {option: value})
    assert response.status_code in (200, 400, 404), (path, option, value, response.text[:300])
    if response.status_code != 200:
        assert response.json()["type"] == "error"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource=st.lists(st.one_of(st.text(max_size=20), FRAGMENTS), max_size=4).map("/".join))
def test_hostile_resource_paths_get_a_clear_answer_never_a_500(app: FastAPI, resource: str) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(f"{ROOT}/Things/{quote(resource)}")
    assert response.status_code in (200, 400, 404), (resource, response.text[:300])
