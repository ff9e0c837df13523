"""The public camera register on SQLite and PostgreSQL: what it lists, the bytes it counts
(measured from the request bodies received), masking, software approval, the sign, and what
it must never show."""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from api_testkit import T0, Registered, add_account, make_report, minutes, register, settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.db import session_scope
from api.models import IntervalReportRecord
from api.services import registry, tokens
from api.services.ingest import apportion
from api.services.register import MASK, WIRE_SCHEMA
from api.services.registry import camera_from_setup
from contract import VEHICLE_CLASSES, IntervalReport
from contract.schema import REPORT_BATCH
from contract.site import Camera as ConfiguredCamera

CODE = "c0de" * 16
MODEL = "30de1" * 12 + "abcd"
REGISTER = "/api/v1/open/register.json"
GEOJSON = "/api/v1/open/register.geojson"
PUBLIC_URL = "https://register.example.org"
IPV4 = re.compile(rb"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")


def page(camera: str) -> str:
    return f"/api/v1/open/register/cameras/{camera}"


def sign(camera: str) -> str:
    return f"{page(camera)}/sign.svg"


def body_of(*reports: IntervalReport, indent: int | None = None) -> bytes:
    """A batch body as a worker might encode it (indent makes it larger than canonical)."""
    return json.dumps(
        {"reports": [r.model_dump(mode="json") for r in reports]}, indent=indent
    ).encode()


def heartbeat(camera: str, software: dict[str, Any] | None = None, **stream: Any) -> bytes:
    beat: dict[str, Any] = {
        "camera_id": camera,
        "sent_at": datetime.now(UTC).isoformat(),
        "uptime_s": 60.0,
        "outbox_backlog": 0,
        "dropped_reports": 0,
        "streams": [
            {"camera_id": camera, "state": "streaming", "reconnects": 0, "fps": 8.0} | stream
        ],
        "config_version": 1,
    }
    if software is not None:
        beat["software"] = software
    return json.dumps(beat).encode()


def post(client: TestClient, reg: Registered, path: str, body: bytes) -> int:
    headers = reg.auth | {"Content-Type": "application/json"}
    return client.post(path, content=body, headers=headers).status_code


def camera_page(client: TestClient, camera: str) -> dict[str, Any]:
    response = client.get(page(camera))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def listed(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get(REGISTER)
    assert response.status_code == 200, response.text
    return {c["camera_id"]: c for c in response.json()["cameras"]}


@pytest.fixture
def app_with(database_url: str) -> Iterator[Any]:
    """Apps on the session's database with other settings; closed after the test."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(settings_for(database_url, **overrides)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def set_listed(app: FastAPI, site_id: str, listed_flag: bool) -> None:
    with session_scope(app.state.session_factory) as session:
        site = registry.require_site(session, site_id)
        site.listed = listed_flag


def test_listed_sites_cameras_are_in_the_register_and_unlisted_ones_are_not(
    app: FastAPI, client: TestClient
) -> None:
    public = register(app.state.settings, public=True)
    private = register(app.state.settings, public=False)
    hidden = register(app.state.settings, public=True)
    set_listed(app, hidden.site, False)
    cameras = listed(client)
    assert {public.camera, private.camera} <= set(cameras)
    assert hidden.camera not in cameras
    entry = cameras[public.camera]
    for name in ("camera_id", "site_id", "purpose", "operator", "contact", "measures"):
        assert entry[name], name
    assert entry["last_report_at"] is None
    assert entry["bytes_sent_24h"] == 0
    assert entry["measures"]["lines"] == [
        {"name": "main", "directions": ["left", "northbound", "right", "southbound"]}
    ]
    assert entry["measures"]["zones"] == ["approach"]
    assert (entry["counts_published"], cameras[private.camera]["counts_published"]) == (
        True,
        False,
    )
    assert cameras[private.camera]["open_data"] is None
    assert entry["page_url"].endswith(f"/register.html?camera={public.camera}")
    features = {f["id"]: f for f in client.get(GEOJSON).json()["features"]}
    assert hidden.camera not in features
    assert features[public.camera]["geometry"] == {"type": "Point", "coordinates": [-0.1, 51.5]}
    assert features[public.camera]["properties"]["site_id"] == public.site
    for path in (page(hidden.camera), sign(hidden.camera), page("no-such-cam")):
        assert client.get(path).status_code == 404, path


def test_listed_is_a_site_setting_through_the_admin_api(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    site = {"id": site_id, "name": "Quiet lane", "lat": 52.0, "lon": 5.0, "listed": False}
    assert client.post("/api/v1/admin/sites", json=site, headers=admin_headers).status_code == 201
    camera = {"id": f"cam-{site_id[5:]}", "site_id": site_id, "lines": [{"name": "main"}]}
    assert client.post("/api/v1/admin/cameras", json=camera, headers=admin_headers).is_success
    assert camera["id"] not in listed(client)
    fields = {k: v for k, v in site.items() if k != "id"} | {
        "road": "",
        "timezone": "UTC",
        "description": "",
        "public": False,
        "listed": True,
    }
    put = client.put(f"/api/v1/admin/sites/{site_id}", json=fields, headers=admin_headers)
    assert put.status_code == 200, put.text
    assert camera["id"] in listed(client)


@pytest.mark.parametrize(
    ("total", "weights", "shares"),
    [
        (10, [1, 1, 1], [4, 3, 3]),
        (100, [30, 70], [30, 70]),
        (7, [1, 2, 4], [1, 2, 4]),
        (8, [1, 2, 4], [1, 2, 5]),
        (1, [5, 5], [1, 0]),
        (0, [3, 4], [0, 0]),
        (1001, [300], [1001]),
    ],
)
def test_apportion_splits_exactly(total: int, weights: list[int], shares: list[int]) -> None:
    assert apportion(total, weights) == shares
    assert sum(shares) == total


def test_bytes_are_the_request_bodies_received_shared_exactly_by_the_reports(
    app: FastAPI, client: TestClient
) -> None:
    reg = register(app.state.settings)
    reports = [
        make_report(reg.camera, T0 + minutes(n), {("main", "northbound", "car"): n + 1})
        for n in range(3)
    ]
    first = body_of(*reports[:2], indent=2)  # not the canonical encoding: bytes as sent count
    resend = body_of(reports[1], reports[2])  # one duplicate, one new
    beat = heartbeat(reg.camera)
    assert post(client, reg, "/api/v1/reports", first) == 200
    assert post(client, reg, "/api/v1/reports", resend) == 200
    assert post(client, reg, "/api/v1/heartbeat", beat) == 200
    refused = body_of(make_report(reg.camera, T0 + minutes(9), {("nowhere", "up", "car"): 1}))
    assert post(client, reg, "/api/v1/reports", refused) == 422  # stored nothing: not counted

    shown = camera_page(client, reg.camera)
    assert shown["bytes"]["reports_24h"] == len(first) + len(resend)
    assert shown["bytes"]["heartbeats_24h"] == len(beat)
    assert (
        shown["bytes"]["last_24h"]
        == shown["bytes_sent_24h"]
        == len(first) + len(resend) + len(beat)
    )
    assert (shown["bytes"]["report_requests_24h"], shown["bytes"]["heartbeat_requests_24h"]) == (
        2,
        1,
    )
    assert listed(client)[reg.camera]["bytes_sent_24h"] == shown["bytes_sent_24h"]
    with app.state.session_factory() as session:
        stored = dict(
            session.execute(
                select(
                    IntervalReportRecord.interval_start_s, IntervalReportRecord.wire_bytes
                ).where(IntervalReportRecord.camera_id == reg.camera)
            ).all()
        )
    first_two = [stored[int((T0 + minutes(n)).timestamp())] for n in range(2)]
    assert sum(first_two) == len(first)  # the first batch's bytes, shared exactly
    assert abs(first_two[0] - first_two[1]) <= 2  # equal-sized reports get equal shares
    third = stored[int((T0 + minutes(2)).timestamp())]
    assert 0 < third < len(resend)
    assert shown["bytes"]["reports_stored_24h"] == 3
    assert shown["bytes"]["per_report"] == round((sum(first_two) + third) / 3)
    assert shown["bytes"]["latest_report"] == third
    assert shown["bytes"]["rounded"] is False


def test_a_public_sites_latest_report_is_shown_exactly_as_received(
    app: FastAPI, client: TestClient
) -> None:
    reg = register(app.state.settings)
    reports = [
        make_report(reg.camera, T0 + minutes(n), {("main", "southbound", "bus"): 40 + n})
        for n in range(2)
    ]
    assert post(client, reg, "/api/v1/reports", body_of(*reversed(reports))) == 200
    shown = camera_page(client, reg.camera)["latest_report"]
    assert shown["masked"] is False
    assert shown["body"] == reports[-1].model_dump(mode="json")


def shows_number(text: str, number: int) -> bool:
    """Whether `number` stands in `text` as a number of its own (not inside an id or digest)."""
    return re.search(rf"(?<![0-9A-Za-z.]){number}(?![0-9A-Za-z.])", text) is not None


def private_values(reg: Registered) -> tuple[IntervalReport, list[int]]:
    counts = {("main", "northbound", "car"): 4711, ("main", "southbound", "truck"): 813}
    report = make_report(reg.camera, T0, counts)
    return report, list(counts.values())


def test_a_private_sites_report_keeps_its_shape_and_hides_every_number(
    app: FastAPI, client: TestClient
) -> None:
    reg = register(app.state.settings, public=False)
    report, secret_counts = private_values(reg)
    assert post(client, reg, "/api/v1/reports", body_of(report)) == 200
    shown = camera_page(client, reg.camera)
    latest = shown["latest_report"]
    assert latest["masked"] is True
    assert "does not publish" in latest["masked_because"]
    body = latest["body"]
    assert body["camera_id"] == reg.camera
    every_row = [
        ("main", direction, vehicle_class, MASK)
        for direction in ("left", "northbound", "right", "southbound")  # all four, labelled
        for vehicle_class in VEHICLE_CLASSES
    ]
    assert [
        (r["line"], r["direction"], r["vehicle_class"], r["count"]) for r in body["counts"]
    ] == every_row, "every registered row, whichever had traffic"
    assert [set(z.values()) for z in body["zones"]] == [{"approach", MASK}]
    assert body["coverage"] == body["fps"] == body["health"]["reconnects"] == MASK
    assert body["partial"] == MASK
    assert shown["bytes"]["rounded"] is True
    assert shown["bytes"]["last_24h"] % 100 == 0
    for path in (REGISTER, GEOJSON, page(reg.camera), sign(reg.camera)):
        text = client.get(path).text
        for value in secret_counts:
            assert not shows_number(text, value), (path, value)


def test_masked_reports_of_different_traffic_look_the_same(
    app: FastAPI, client: TestClient
) -> None:
    bodies = []
    for counts in ({("main", "northbound", "car"): 3}, {("main", "southbound", "truck"): 9}):
        reg = register(app.state.settings, public=False)
        assert post(client, reg, "/api/v1/reports", body_of(make_report(reg.camera, T0, counts)))
        body = camera_page(client, reg.camera)["latest_report"]["body"]
        bodies.append({k: v for k, v in body.items() if k not in ("camera_id", "report_id")})
    assert bodies[0] == bodies[1], "the mask must not show where traffic was"


def test_small_count_suppression_masks_public_reports_too(app_with: Any) -> None:
    client = app_with(open_min_count=5)
    reg = register(client.app.state.settings)
    assert post(client, reg, "/api/v1/reports", body_of(make_report(reg.camera, T0))) == 200
    latest = camera_page(client, reg.camera)["latest_report"]
    assert latest["masked"] is True
    assert "small counts" in latest["masked_because"]
    assert latest["body"]["counts"][0]["count"] == MASK


SOFTWARE = {"version": "0.1.0", "code_sha256": CODE, "model_sha256": MODEL}


@pytest.mark.parametrize(
    ("approved_list", "software", "approved"),
    [
        ([], SOFTWARE, False),
        ([CODE, MODEL], SOFTWARE, True),
        ([CODE], SOFTWARE, False),  # an unapproved model is not an approved release
        ([CODE, MODEL], SOFTWARE | {"model_sha256": None}, False),
        ([CODE, MODEL], None, None),  # an older worker says nothing: unknown
    ],
)
def test_software_digests_are_shown_and_checked_against_the_approved_list(
    app_with: Any, approved_list: list[str], software: dict[str, Any] | None, approved: bool | None
) -> None:
    client = app_with(approved_software=approved_list)
    reg = register(client.app.state.settings)
    assert post(client, reg, "/api/v1/heartbeat", heartbeat(reg.camera, software)) == 200
    shown = camera_page(client, reg.camera)["software"]
    expected = software or {"version": None, "code_sha256": None, "model_sha256": None}
    assert {k: shown[k] for k in expected} == expected
    assert shown["approved"] is approved
    assert listed(client)[reg.camera]["software_approved"] is approved


def test_a_day_of_video_is_estimated_from_the_stream_the_worker_reports(
    app: FastAPI, client: TestClient
) -> None:
    reg = register(app.state.settings)
    assert camera_page(client, reg.camera)["video"] is None
    beat = heartbeat(reg.camera, frame_width=320, frame_height=240, source_fps=25.0)
    assert post(client, reg, "/api/v1/heartbeat", beat) == 200
    video = camera_page(client, reg.camera)["video"]
    assert (video["width"], video["height"], video["fps"]) == (320, 240, 25.0)
    assert video["bitrate_bps"] == 192_000  # 0.1 bit per pixel and frame
    assert video["day_bytes"] == 192_000 * 86_400 // 8
    assert "estimate" in video["basis"]


def test_the_wire_schema_is_described_from_the_contract(client: TestClient) -> None:
    fields = {f.field: f for f in WIRE_SCHEMA}
    assert fields["counts[].count"].meaning == "Vehicles counted"
    assert fields["counts[].vehicle_class"].kind.startswith("one of bicycle, car")
    assert fields["zones[].mean_speed_kmh"].kind == "number, or null"
    assert fields["health"].kind == "object"
    assert "health.dropped_reports" in fields
    assert all(f.meaning for f in WIRE_SCHEMA)
    schema = client.get("/api/v1/open/register/wire-schema.json")
    assert schema.status_code == 200
    assert schema.json() == REPORT_BATCH.committed()


@pytest.mark.parametrize(
    ("language", "headline"),
    [("en", "This camera counts traffic"), ("nl", "Deze camera telt verkeer")],
)
def test_the_sign_is_an_svg_in_the_operators_language_with_its_texts_as_text(
    app_with: Any, language: str, headline: str
) -> None:
    contact = "privacy@city.example <b>&amp; objections</b>"
    client = app_with(
        register_language=language, register_contact=contact, register_public_url=PUBLIC_URL
    )
    reg = register(client.app.state.settings)
    response = client.get(sign(reg.camera))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)  # noqa: S314 - our own response
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(root.itertext())
    assert headline in text
    assert contact in text  # as text: the markup in it did not become elements
    assert not root.findall(".//{http://www.w3.org/2000/svg}b")
    (link,) = root.findall(".//{http://www.w3.org/2000/svg}a")
    assert link.get("href") == f"{PUBLIC_URL}/register.html?camera={reg.camera}"
    assert listed(client)[reg.camera]["contact"] == contact


def test_nothing_secret_is_in_any_register_response(
    app_with: Any, admin_headers: dict[str, str]
) -> None:
    """Seed every secret the system holds next to a listed camera, then search every body."""
    client = app_with(register_public_url=PUBLIC_URL)
    settings = client.app.state.settings
    reg = register(settings, public=False)
    stream_url = "rtsp://camuser:hunter2@10.20.30.40:554/stream1"
    configured = ConfiguredCamera.model_validate(
        {
            "id": f"cfg-{reg.camera[4:]}",
            "source": stream_url,
            "lines": [{"name": "main", "points": [[0, 0.5], [1, 0.5]]}],
        }
    )
    with session_scope(client.app.state.session_factory) as session:
        spec = camera_from_setup(configured.id, reg.site, configured, 1)
        registry.register_camera(session, spec)
        extra = tokens.issue_device_token(session, settings.secret_key, configured.id)
    account = add_account(settings, "admin")
    login = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert login.status_code == 200
    report, counts = private_values(reg)
    assert post(client, reg, "/api/v1/reports", body_of(report)) == 200
    assert post(client, reg, "/api/v1/heartbeat", heartbeat(reg.camera, SOFTWARE)) == 200
    secrets = [
        reg.token,
        reg.token_id,
        extra.token,
        extra.token_id,
        admin_headers["Authorization"][7:],
        account.email,
        account.password,
        login.json()["csrf_token"],
        stream_url,
        "rtsp",
        "hunter2",
        "10.20.30.40",
        settings.secret_key,
    ]
    client.cookies.clear()
    bodies = {
        path: client.get(path).content
        for path in (
            REGISTER,
            GEOJSON,
            page(reg.camera),
            sign(reg.camera),
            page(configured.id),
            sign(configured.id),
        )
    }
    for path, body in bodies.items():
        for secret in secrets:
            assert secret.encode() not in body, (path, secret)
        for count in counts:
            assert not shows_number(body.decode(), count), (path, count)
        assert not IPV4.search(body), (path, IPV4.search(body))


def test_register_feeds_are_public_and_cacheable(app: FastAPI, client: TestClient) -> None:
    reg = register(app.state.settings)
    for path in (REGISTER, GEOJSON, page(reg.camera), sign(reg.camera)):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"].startswith("public"), path
        assert response.headers["access-control-allow-origin"] == "*"
        assert revalidates(client, path, response), path


def revalidates(client: TestClient, path: str, response: Any, tries: int = 3) -> bool:
    """A resend with the ETag gets 304, unless the body really changed in between (the
    shared test database holds other tests' cameras, whose status follows the clock)."""
    for _ in range(tries):
        again = client.get(path, headers={"If-None-Match": response.headers["etag"]})
        if again.status_code == 304:
            return True
        assert again.status_code == 200
        assert again.content != response.content, "same body, yet no 304"
        response = again
    return False


@pytest.mark.parametrize(("public_url", "varies"), [("", True), ("https://counts.example", False)])
def test_links_that_follow_the_host_are_cached_per_host(
    app_with: Any, public_url: str, varies: bool
) -> None:
    client = app_with(register_public_url=public_url)
    reg = register(client.app.state.settings)
    for path in (REGISTER, page(reg.camera), sign(reg.camera)):
        response = client.get(path, headers={"Host": "forged.example"})
        assert response.status_code == 200
        assert ("host" in response.headers.get("vary", "").lower()) is varies, path
        assert ("forged.example" in response.text) is varies, path
