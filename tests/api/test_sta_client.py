"""SensorThings against a real server (issue #12): frost-sta-client, the Python client of
FROST-Server, and the requests Hamburg's Masterportal sends, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import frost_sta_client as fsc
import httpx
import pytest
import requests

from tests.support.databases import scratch_postgres_database
from tests.support.tally_api import (
    SeedCamera,
    TallyServer,
    add_site,
    post_history,
    register_camera,
    running_server,
)

UTC_ZONE = ZoneInfo("UTC")
HAMBURG = "POLYGON ((9.9 53.5, 10.2 53.5, 10.2 53.7, 9.9 53.7, 9.9 53.5))"
"""Masterportal's map extent, as SensorThingsHttp writes it (lon lat, a space after POLYGON)."""
LATEST = "Observations($orderby=phenomenonTime desc;$top=1)"
TOP = re.compile(r"[\$|%24]top=([0-9]+)")
SKIP = re.compile(r"[\$|%24]skip=([0-9]+)")
"""Masterportal's own expressions for a nextLink's $top and $skip."""


@dataclass(frozen=True)
class World:
    server: TallyServer
    quarters: SeedCamera
    hours: SeedCamera

    @property
    def root(self) -> str:
        return f"{self.server.base_url}/sta/v1.1"


def seed(server: TallyServer) -> World:
    """Two public sites in the Hamburg extent (one camera reporting every 15 minutes, one
    hourly), a public site elsewhere, and a private one inside the extent."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    quarters = SeedCamera("cam-hh-1", now - timedelta(days=2), now, 900, UTC_ZONE, 1.0)
    hours = SeedCamera("cam-hh-2", now - timedelta(days=1), now, 3600, UTC_ZONE, 0.5)
    hidden = SeedCamera("cam-hidden", now - timedelta(days=1), now, 900, UTC_ZONE, 2.0)
    with server.admin() as admin:
        add_site(admin, "hh-1", "Hamburg Ost", 53.55, 10.05, public=True)
        add_site(admin, "hh-2", "Hamburg Nord", 53.62, 10.0, public=True)
        add_site(admin, "munich", "Elsewhere", 48.14, 11.58, public=True)
        add_site(admin, "hh-private", "Hamburg intern", 53.56, 10.06, public=False)
        for site, camera in (("hh-1", quarters), ("hh-2", hours), ("hh-private", hidden)):
            token = register_camera(admin, site, camera.camera_id, camera.seconds)
            post_history(server.base_url, token, camera)
    return World(server, quarters, hours)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("sta")
    if request.param == "sqlite":
        with running_server(workdir) as server:
            yield seed(server)
        return
    with scratch_postgres_database("sta_client") as url, running_server(workdir, url) as server:
        yield seed(server)


@pytest.fixture
def service(world: World) -> fsc.SensorThingsService:
    return fsc.SensorThingsService(world.root)


def expected(camera: SeedCamera, direction: str, vehicle_class: str) -> list[tuple[str, int]]:
    """(phenomenonTime, count) of every interval the camera reported."""
    rows = []
    for report in camera.reports():
        start = report.interval_start
        end = start + timedelta(seconds=camera.seconds)
        count = sum(
            r.count
            for r in report.counts
            if r.direction == direction and r.vehicle_class == vehicle_class
        )
        rows.append((f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}", count))
    return rows


# --- frost-sta-client ------------------------------------------------------------------------


def test_the_client_lists_public_things_only(service: fsc.SensorThingsService) -> None:
    things = list(service.things().query().list())
    assert sorted(t.id for t in things) == ["hh-1", "hh-2", "munich"]
    thing = service.things().find("hh-1")
    assert thing.name == "Hamburg Ost"
    assert thing.properties["licence"]["id"] == "CC-BY-4.0"
    assert thing.properties["attribution"]
    with pytest.raises(requests.HTTPError) as refused:
        service.things().find("hh-private")
    assert refused.value.response.status_code == 404
    sensors = list(service.sensors().query().list())
    assert sorted(s.id for s in sensors) == ["cam-hh-1", "cam-hh-2"]


def test_the_client_filters_locations_by_extent(service: fsc.SensorThingsService) -> None:
    inside = service.locations().query().filter(f"st_within(location, geography'{HAMBURG}')")
    found = {loc.id: loc.location for loc in inside.list()}
    assert set(found) == {"hh-1", "hh-2"}
    assert found["hh-1"] == {"type": "Point", "coordinates": [10.05, 53.55]}


def test_the_client_pages_a_datastream_through_its_next_links(
    world: World, service: fsc.SensorThingsService
) -> None:
    """192 quarters of history: the client follows @iot.nextLink past the first 100."""
    layer = service.datastreams().query().filter("properties/layerName eq 'car_15min'")
    streams = {(d.properties["camera"], d.properties["direction"]): d for d in layer.list()}
    assert set(streams) == {
        (camera, direction)
        for camera in ("cam-hh-1", "cam-hh-2")  # the hourly camera has them too, empty
        for direction in ("northbound", "southbound")
    }
    north = streams[("cam-hh-1", "northbound")]
    assert north.observation_type.endswith("OM_CountObservation")
    assert north.unit_of_measurement.symbol == "veh"
    observations = north.get_observations().query().count().list()
    assert observations.count == len(expected(world.quarters, "northbound", "car"))
    assert observations.next_link is not None
    every = [(o.phenomenon_time, o.result) for o in observations]
    assert every == expected(world.quarters, "northbound", "car")
    assert all(o.result_quality == {"coverage": 1.0, "suppressed": False} for o in observations)


def test_the_client_queries_observations(world: World, service: fsc.SensorThingsService) -> None:
    stream = "cam-hh-2:main:southbound:1h:vehicles"
    by_class = [expected(world.hours, "southbound", c) for c in ("car", "truck", "bus")]
    by_class += [expected(world.hours, "southbound", c) for c in ("motorcycle", "bicycle")]
    hours = [(rows[0][0], sum(r[1] for r in rows)) for rows in zip(*by_class, strict=True)]
    latest = (
        service.observations()
        .query()
        .filter(f"Datastream/id eq '{stream}'")
        .orderby("phenomenonTime", "desc")
        .top(3)
        .list()
    )
    assert [(o.phenomenon_time, o.result) for o in latest.entities] == hours[::-1][:3]
    big = service.observations().query().filter(f"Datastream/id eq '{stream}' and result ge 50")
    assert [(o.phenomenon_time, o.result) for o in big.list()] == [h for h in hours if h[1] >= 50]
    thing = service.things().find("hh-2")
    streams = list(thing.get_datastreams().query().filter("properties/aggregation eq '1d'").list())
    assert len(streams) == 2 * 6
    assert not list(
        service.datastreams().find(stream.replace("1h", "15min")).get_observations().query().list()
    )


# --- Masterportal -------------------------------------------------------------------------


def masterportal_url(world: World, path: str, **params: str) -> str:
    """A URL as Masterportal's SensorThingsHttp builds it (values percent-encoded)."""
    query = "&".join(f"{k}={quote(v, safe='(),/$=;')}" for k, v in params.items())
    return f"{world.root}/{path}?{query}"


def fetch(client: httpx.Client, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, (url, response.text[:300])
    return response.json()


def depth_bound_reached(link: str) -> bool:
    """Masterportal stops at a nextLink whose own $top is at most its $skip."""
    top, skip = TOP.search(link), SKIP.search(link)
    return bool(top and skip and 0 < int(top.group(1)) <= int(skip.group(1)))


def follow(client: httpx.Client, url: str) -> list[dict[str, Any]]:
    """Every entity of a collection with its expanded collections completed, as
    SensorThingsHttp does: it follows each @iot.nextLink up to the depth bound."""
    found: list[dict[str, Any]] = []
    while url:
        body = fetch(client, url)
        found += [complete(client, entity) for entity in body["value"]]
        url = body.get("@iot.nextLink", "")
        if depth_bound_reached(url):
            break
    return found


def complete(client: httpx.Client, entity: dict[str, Any]) -> dict[str, Any]:
    for key in [k for k in entity if k.endswith("@iot.nextLink")]:
        link = entity.pop(key)
        if not depth_bound_reached(link):
            entity[key.removesuffix("@iot.nextLink")] += follow(client, link)
    for value in entity.values():
        if isinstance(value, list):
            for child in value:
                if isinstance(child, dict):
                    complete(client, child)
    return entity


def latest_of(client: httpx.Client, world: World, stream: str) -> list[Any]:
    url = masterportal_url(
        world,
        f"Datastreams('{stream}')/Observations",
        **{"$orderby": "phenomenonTime desc", "$top": "1"},
    )
    return list(fetch(client, url)["value"])


@pytest.mark.parametrize(
    "extent_filter",
    [
        f"st_within(Locations/location,geography'{HAMBURG}')",
        f"startswith(Things/name,'Hamburg') and st_within(Locations/location,geography'{HAMBURG}')",
    ],
)
def test_masterportal_reads_the_things_in_its_extent_with_their_latest_counts(
    world: World, extent_filter: str
) -> None:
    url = masterportal_url(
        world,
        "Things",
        **{"$filter": extent_filter, "$expand": f"Datastreams($expand={LATEST}),Locations"},
    )
    with httpx.Client(timeout=60) as client:
        things = follow(client, url)
        assert sorted(t["@iot.id"] for t in things) == ["hh-1", "hh-2"]
        for thing in things:
            (location,) = thing["Locations"]
            assert location["location"]["type"] == "Point"
            assert len(thing["Datastreams"]) == 36
            for stream in thing["Datastreams"]:
                assert stream["Observations"] == latest_of(client, world, stream["@iot.id"])
        quarterly = next(t for t in things if t["@iot.id"] == "hh-1")
        car = next(
            s
            for s in quarterly["Datastreams"]
            if s["@iot.id"] == "cam-hh-1:main:northbound:15min:car"
        )
        assert (
            car["Observations"][0]["phenomenonTime"],
            car["Observations"][0]["result"],
        ) == expected(world.quarters, "northbound", "car")[-1]


def test_masterportal_reads_a_layer_of_datastreams(world: World) -> None:
    """Hamburg's traffic layers are Datastreams picked by a property, each with its latest
    observation (one layer per aggregation level)."""
    url = masterportal_url(
        world,
        "Datastreams",
        **{"$filter": "properties/layerName eq 'vehicles_15min'", "$expand": LATEST},
    )
    with httpx.Client(timeout=60) as client:
        streams = follow(client, url)
    by_id = {s["@iot.id"]: s["Observations"] for s in streams}
    assert set(by_id) == {
        f"{camera}:main:{direction}:15min:vehicles"
        for camera in ("cam-hh-1", "cam-hh-2")
        for direction in ("northbound", "southbound")
    }
    assert by_id["cam-hh-2:main:northbound:15min:vehicles"] == []  # hourly reports: no quarters
    (newest,) = by_id["cam-hh-1:main:northbound:15min:vehicles"]
    assert newest["phenomenonTime"] == expected(world.quarters, "northbound", "car")[-1][0]


def test_masterportal_follows_the_pages_the_server_cut(world: World) -> None:
    """Past 100 observations the server cuts the expanded list; the link carries no $top,
    so Masterportal follows it to the end."""
    url = masterportal_url(world, "Things", **{"$expand": "Datastreams($expand=Observations)"})
    with httpx.Client(timeout=60) as client:
        first = fetch(client, url)
        hh1 = next(t for t in first["value"] if t["@iot.id"] == "hh-1")
        stream = next(s for s in hh1["Datastreams"] if s["@iot.id"].endswith(":15min:car"))
        assert len(stream["Observations"]) == 100
        assert not TOP.search(stream["Observations@iot.nextLink"])
        things = follow(client, url)
    hh1 = next(t for t in things if t["@iot.id"] == "hh-1")
    stream = next(s for s in hh1["Datastreams"] if s["@iot.id"].endswith(":15min:car"))
    assert [(o["phenomenonTime"], o["result"]) for o in stream["Observations"]] == expected(
        world.quarters, stream["properties"]["direction"], "car"
    )


def test_masterportal_stops_at_the_top_it_asked_for(world: World) -> None:
    """With $top at every level the server still links the next pages (FROST-Server does),
    nested options percent-encoded so the client's depth bound tells the levels apart."""
    expand = "Datastreams($top=2;$expand=Observations($top=2))"
    url = masterportal_url(world, "Things", **{"$expand": expand, "$top": "2"})
    with httpx.Client(timeout=60) as client:
        first = fetch(client, url)
        assert depth_bound_reached(first["@iot.nextLink"])
        links = [t["Datastreams@iot.nextLink"] for t in first["value"]]
        assert all("%24top%3D2" in link and depth_bound_reached(link) for link in links)
        things = follow(client, url)
        assert [len(t["Datastreams"]) for t in things] == [2, 2]
        sizes = {s["@iot.id"]: len(s["Observations"]) for t in things for s in t["Datastreams"]}
        assert sizes == {  # the first two by id: 15-minute ones, which the hourly camera lacks
            "cam-hh-1:main:northbound:15min:bicycle": 2,
            "cam-hh-1:main:northbound:15min:bus": 2,
            "cam-hh-2:main:northbound:15min:bicycle": 0,
            "cam-hh-2:main:northbound:15min:bus": 0,
        }
        rest = fetch(client, links[0])
        assert len(rest["value"]) == 2
        assert rest["value"][0]["@iot.id"] not in {s["@iot.id"] for s in things[0]["Datastreams"]}
