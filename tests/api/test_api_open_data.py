"""Open data: public sites only, licence everywhere, caching, small-count suppression."""

from __future__ import annotations

import csv
import io

from api_testkit import T0, batch, make_report, minutes, register, settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app

WINDOW = {"from": T0.isoformat(), "to": (T0 + minutes(60)).isoformat(), "granularity": "15min"}


def test_counts_csv_and_json_with_licence_and_caching(app: FastAPI, client: TestClient) -> None:
    reg = register(app.state.settings, public=True)
    reports = [make_report(reg.camera, T0 + minutes(n)) for n in range(3)]
    client.post("/api/v1/reports", json=batch(*reports), headers=reg.auth)
    url = f"/api/v1/open/sites/{reg.site}/counts.csv"
    response = client.get(url, params=WINDOW)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["X-Licence"] == "CC-BY-4.0"
    assert 'rel="license"' in response.headers["Link"]
    assert response.headers["Last-Modified"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {(r["vehicle_class"], r["count"]) for r in rows} == {("car", "15")}
    assert rows[0]["coverage"] == "0.2"
    again = client.get(url, params=WINDOW, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    body = client.get(f"/api/v1/open/sites/{reg.site}/counts.json", params=WINDOW).json()
    assert body["licence"]["id"] == "CC-BY-4.0"
    assert body["attribution"]
    assert body["rows"][0]["count"] == 15


def test_private_sites_are_not_published(app: FastAPI, client: TestClient) -> None:
    reg = register(app.state.settings, public=False)
    assert client.get(f"/api/v1/open/sites/{reg.site}/counts.json").status_code == 404
    features = client.get("/api/v1/open/sites.geojson").json()["features"]
    assert reg.site not in {f["id"] for f in features}
    catalog = client.get("/api/v1/open/catalog.json").json()
    assert reg.site not in {d["dct:identifier"] for d in catalog["dcat:dataset"]}


def test_sites_feeds(app: FastAPI, client: TestClient) -> None:
    reg = register(app.state.settings, public=True)
    geojson = client.get("/api/v1/open/sites.geojson")
    assert geojson.headers["content-type"].startswith("application/geo+json")
    feature = next(f for f in geojson.json()["features"] if f["id"] == reg.site)
    assert feature["geometry"] == {"type": "Point", "coordinates": [-0.1, 51.5]}
    assert geojson.json()["licence"]["url"].startswith("https://creativecommons.org/")
    assert reg.site in client.get("/api/v1/open/sites.csv").text
    catalog = client.get("/api/v1/open/catalog.json").json()
    dataset = next(d for d in catalog["dcat:dataset"] if d["dct:identifier"] == reg.site)
    distributions = [d["dcat:downloadURL"] for d in dataset["dcat:distribution"]]
    assert len(distributions) == 4  # the count feeds; movement feeds only with movement data
    assert all(f"/sites/{reg.site}/counts." in url for url in distributions)


def test_small_counts_are_suppressed(database_url: str) -> None:
    settings = settings_for(database_url, open_min_count=5)
    reg = register(settings, public=True)
    with TestClient(create_app(settings)) as client:
        small = make_report(reg.camera, T0, {("main", "northbound", "car"): 3})
        client.post("/api/v1/reports", json=batch(small), headers=reg.auth)
        body = client.get(f"/api/v1/open/sites/{reg.site}/counts.json", params=WINDOW).json()
    (row,) = body["rows"]
    assert (row["count"], row["suppressed"]) == (None, True)
