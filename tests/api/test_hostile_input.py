"""Hostile input against a real server: a clear 4xx JSON error, nothing stored, still alive.

`python -m api serve` (uvicorn) on loopback, on SQLite and PostgreSQL. Every case is one raw
HTTP request; after each, every table's row count must be what it was before, and the answer
must be a JSON error with a 4xx status and no traceback. The server must still be healthy
after the whole barrage.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from api_testkit import T0, batch, make_report, zone_row
from sqlalchemy import Engine, func, select

from api.db import make_engine
from api.models import Base
from tests.support.tally_api import TallyServer, running_server

MAX_BODY_BYTES = 8 * 1024 * 1024
DEPTH = 100_000
REQUEST_TIMEOUT_S = 20.0
SQL = "'; DROP TABLE sites;--"
HOSTILE_LABELS = {
    "dot-dot-slash": "../../etc/passwd",
    "script": "<script>alert(1)</script>",
    "encoded-dots": "%2e%2e%2f%2e%2e",
    "cyrillic-lookalike": "m\u0430in",
    "fullwidth-lookalike": "\uff4d\uff41\uff49\uff4e",
    "nul-byte": "main\x00",
    "sql": SQL,
    "upper-case": "MAIN",
    "too-long": "a" * 33,
}


@dataclass(frozen=True)
class World:
    """The seeded server: a public site, cameras A and B, and a revoked camera's old token."""

    server: TallyServer
    database: Engine
    site: str
    tokens: dict[str, str]


@dataclass(frozen=True)
class Hostile:
    """One hostile request and the statuses that are a correct answer to it."""

    method: str
    path: str
    expect: int
    body: bytes | None = None
    token: str | None = "camera-a"
    content_type: str | None = "application/json"
    params: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    declared_length: int | None = None


def report_body(camera: str = "cam-a", **report_overrides: Any) -> dict[str, Any]:
    """A valid batch for ``camera`` (minute 30 after T0, never stored) with fields replaced."""
    body = batch(
        make_report(camera, T0.replace(minute=30), zones=[zone_row()]),
    )
    body["reports"][0] |= report_overrides
    return body


def with_count_row(**row: Any) -> dict[str, Any]:
    good = {"line": "main", "direction": "northbound", "vehicle_class": "car", "count": 5}
    return report_body(counts=[good | row])


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


def nested(depth: int, opener: str, closer: str, core: str = "1") -> bytes:
    return (opener * depth + core + closer * depth).encode()


def raw_replace(old: str, new: str) -> bytes:
    """The valid batch with a literal edit: for what json.dumps would never write."""
    text = json.dumps(report_body())
    assert old in text
    return text.replace(old, new, 1).encode()


def post(body: bytes, expect: int, **options: Any) -> Hostile:
    return Hostile("POST", "/api/v1/reports", expect, body, **options)


def site_body(**overrides: Any) -> bytes:
    return encode({"id": "hostile-site", "name": "Hostile", "lat": 51.5, "lon": -0.1} | overrides)


def camera_body(**overrides: Any) -> bytes:
    spec = {
        "id": "cam-hostile",
        "site_id": "site-h",
        "lines": [{"name": "main", "direction_names": {"up": "northbound"}}],
    }
    return encode(spec | overrides)


BODY_CASES: dict[str, Hostile] = {
    # size
    "declared-oversized": post(b"", 413, declared_length=10**10),
    "streamed-oversized": post(b"x" * (MAX_BODY_BYTES + 1), 413, chunked=True),
    # shape and encoding
    "deep-arrays": post(nested(DEPTH, "[", "]"), 400),
    "deep-objects": post(nested(DEPTH, '{"a":', "}"), 400),
    "deep-in-report": post(
        encode(report_body()).replace(
            b'"partial": false', b'"partial": ' + nested(DEPTH, "[", "]")
        ),
        400,
    ),
    "empty-body": post(b"", 422),
    "whitespace-body": post(b"  \n ", 422),
    "not-json": post(b"reports=1", 422),
    "truncated-json": post(encode(report_body())[:-7], 422),
    "invalid-utf8": post(b'{"reports": "\xff\xfe\xc3\x28"}', 400),
    "utf16-body": post(encode(report_body()).decode().encode("utf-16-le"), 422),
    "duplicate-top-key": post(b'{"reports": [], "reports": ' + encode(report_body())[12:], 400),
    "duplicate-count-key": post(raw_replace('"count": 5', '"count": 5, "count": 6'), 400),
    "text-plain": post(encode(report_body()), 422, content_type="text/plain"),
    "form-urlencoded": post(
        encode(report_body()), 422, content_type="application/x-www-form-urlencoded"
    ),
    "multipart": post(encode(report_body()), 422, content_type="multipart/form-data; boundary=x"),
    "xml": post(b"<reports><report/></reports>", 422, content_type="application/xml"),
    "json-but-array": post(encode([report_body()]), 422),
    "json-null": post(b"null", 422),
    # numbers
    "nan-literal": post(raw_replace('"fps": 15.0', '"fps": NaN'), 400),
    "infinity-literal": post(raw_replace('"fps": 15.0', '"fps": Infinity'), 400),
    "minus-infinity": post(raw_replace('"coverage": 1.0', '"coverage": -Infinity'), 400),
    "float-1e308": post(encode(report_body(fps=1e308)), 422),
    "float-overflow-literal": post(raw_replace('"fps": 15.0', '"fps": 1e999'), 400),
    "count-10e30": post(encode(with_count_row(count=10**30)), 422),
    "count-huge-digits": post(raw_replace('"count": 5', '"count": ' + "9" * 5000), 400),
    "negative-count": post(encode(with_count_row(count=-1)), 422),
    "negative-frames": post(encode(report_body(frames_processed=-5)), 422),
    "negative-health": post(
        encode(report_body(health={"reconnects": -1, "dropped_reports": 0})), 422
    ),
    "count-as-string": post(encode(with_count_row(count="5")), 422),
    "count-as-float": post(encode(with_count_row(count=5.5)), 422),
    "count-as-bool": post(encode(with_count_row(count=True)), 422),
    "counts-as-object": post(encode(report_body(counts={"main": 5})), 422),
    "reports-as-string": post(encode({"reports": "all of them"}), 422),
    "empty-batch": post(encode({"reports": []}), 422),
    "extra-field": post(encode(report_body(image="aGVsbG8=")), 422),
    # identity
    "camera-b-token-for-a": post(encode(report_body("cam-a")), 403, token="camera-b"),
    "camera-a-token-for-b": post(encode(report_body("cam-b")), 403),
    "revoked-token-replayed": post(encode(report_body("cam-gone")), 401, token="revoked"),
    "no-token": post(encode(report_body()), 401, token=None),
    "garbage-token": post(encode(report_body()), 401, token="garbage"),
    "heartbeat-for-other-camera": Hostile(
        "POST",
        "/api/v1/heartbeat",
        403,
        encode(
            {
                "camera_id": "cam-b",
                "sent_at": "2026-03-02T08:00:00Z",
                "uptime_s": 1.0,
                "outbox_backlog": 0,
                "dropped_reports": 0,
                "streams": [],
                "config_version": 1,
            }
        ),
    ),
    "heartbeat-revoked-token": Hostile("POST", "/api/v1/heartbeat", 401, b"{}", token="revoked"),
    "heartbeat-nan": Hostile("POST", "/api/v1/heartbeat", 400, b'{"uptime_s": NaN}'),
    # admin bodies (a real admin token)
    "admin-site-duplicate-key": Hostile(
        "POST", "/api/v1/admin/sites", 400, site_body()[:-1] + b', "id": "other"}', token="admin"
    ),
    "admin-site-nan-lat": Hostile(
        "POST",
        "/api/v1/admin/sites",
        400,
        site_body().replace(b'"lat": 51.5', b'"lat": NaN'),
        token="admin",
    ),
    "admin-site-huge-lat": Hostile(
        "POST", "/api/v1/admin/sites", 422, site_body(lat=1e308), token="admin"
    ),
    "admin-camera-zone-lanes-huge": Hostile(
        "POST",
        "/api/v1/admin/cameras",
        422,
        camera_body(zones=[{"name": "z", "lanes": 10**30}]),
        token="admin",
    ),
    "admin-camera-negative-interval": Hostile(
        "POST", "/api/v1/admin/cameras", 422, camera_body(interval_seconds=-60), token="admin"
    ),
    "admin-site-name-nul": Hostile(
        "POST", "/api/v1/admin/sites", 422, site_body(name="High\x00St"), token="admin"
    ),
    "admin-token-name-nul": Hostile(
        "POST", "/api/v1/admin/admin-tokens", 422, encode({"name": "\x00"}), token="admin"
    ),
    "admin-site-revoked-device-token": Hostile(
        "POST", "/api/v1/admin/sites", 401, site_body(), token="revoked"
    ),
    "admin-site-with-device-token": Hostile("POST", "/api/v1/admin/sites", 401, site_body()),
}


def label_cases() -> dict[str, Hostile]:
    """Every hostile label in every place a label goes: reports, admin bodies, paths."""
    cases: dict[str, Hostile] = {}
    for name, label in HOSTILE_LABELS.items():
        cases |= {
            f"report-camera-{name}": post(encode(report_body(camera_id=label)), 422),
            f"report-line-{name}": post(encode(with_count_row(line=label)), 422),
            f"report-direction-{name}": post(encode(with_count_row(direction=label)), 422),
            f"report-zone-{name}": post(encode(report_body(zones=[zone_row(zone=label)])), 422),
            f"report-class-{name}": post(encode(with_count_row(vehicle_class=label)), 422),
            f"admin-site-id-{name}": Hostile(
                "POST", "/api/v1/admin/sites", 422, site_body(id=label), token="admin"
            ),
            f"admin-camera-id-{name}": Hostile(
                "POST", "/api/v1/admin/cameras", 422, camera_body(id=label), token="admin"
            ),
            f"admin-direction-{name}": Hostile(
                "POST",
                "/api/v1/admin/cameras",
                422,
                camera_body(lines=[{"name": "main", "direction_names": {"up": label}}]),
                token="admin",
            ),
        }
    return cases


def query_cases() -> dict[str, Hostile]:
    """Hostile query and path parameters on the planner and open-data endpoints."""

    def get(path: str, expect: int, **params: str) -> Hostile:
        """Open data anonymously; planner reads signed in (admin token), so the hostile
        parameter, not the missing login, is what gets refused."""
        token = None if path.startswith("/api/v1/open/") else "admin"
        return Hostile("GET", path, expect, token=token, content_type=None, params=params)

    series, summary = "/api/v1/counts/series", "/api/v1/counts/summary"
    cases: dict[str, Hostile] = {}
    for name, value in {"sql": SQL, "script": "<script>", "nul": "\x00", "dots": "../.."}.items():
        cases |= {
            f"series-site-{name}": get(series, 422, site=value),
            f"series-camera-{name}": get(series, 422, camera=value),
            f"series-line-{name}": get(series, 422, line=value),
            f"series-direction-{name}": get(series, 422, direction=value),
            f"series-class-{name}": get(series, 422, vehicle_class=value),
            f"series-group-by-{name}": get(series, 422, group_by=value),
            f"series-bucket-{name}": get(series, 422, bucket=value),
            f"series-from-{name}": get(series, 422, **{"from": value}),
            f"summary-tz-{name}": get(summary, 422, tz=value),
            f"hour-of-week-site-{name}": get("/api/v1/counts/hour-of-week", 422, site=value),
            f"zones-zone-{name}": get("/api/v1/zones/series", 422, zone=value),
            f"health-site-{name}": get("/api/v1/devices/health", 422, site=value),
            f"open-granularity-{name}": get(
                "/api/v1/open/sites/site-h/counts.json", 422, granularity=value
            ),
            f"open-from-{name}": get(
                "/api/v1/open/sites/site-h/counts.csv", 422, **{"from": value}
            ),
        }
    return cases | {
        "site-path-sql": get("/api/v1/sites/%27%3B%20DROP%20TABLE%20sites%3B--", 422),
        "site-path-encoded-dots": get("/api/v1/sites/%2e%2e%2f%2e%2e%2fetc", 404),
        "site-path-nul": get("/api/v1/sites/site-h%00", 422),
        "site-path-script": get("/api/v1/sites/%3Cscript%3E", 422),
        "open-path-sql": get("/api/v1/open/sites/%27%20OR%201%3D1--/counts.json", 422),
        "open-path-lookalike": get("/api/v1/open/sites/site-%D0%B0/counts.csv", 422),
        "open-from-year-0": get(
            "/api/v1/open/sites/site-h/counts.json", 422, **{"from": "0000-01-01"}
        ),
        "open-range-too-wide": get(
            "/api/v1/open/sites/site-h/counts.json",
            422,
            **{"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"},
        ),
        "series-from-after-to": get(series, 422, **{"from": "2026-03-02", "to": "2026-03-01"}),
        "summary-range-too-wide": get(
            summary, 422, **{"from": "2000-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
        ),
        "health-days-huge": get("/api/v1/devices/health", 422, days=str(10**30)),
        "health-days-negative": get("/api/v1/devices/health", 422, days="-1"),
        "health-days-nan": get("/api/v1/devices/health", 422, days="NaN"),
        "admin-revoke-token-sql": Hostile(
            "DELETE", f"/api/v1/admin/tokens/{SQL}", 404, token="admin", content_type=None
        ),
        "admin-revoke-camera-sql": Hostile(
            "DELETE", "/api/v1/admin/cameras/x'--/tokens", 422, token="admin", content_type=None
        ),
    }


CASES = BODY_CASES | label_cases() | query_cases()


def table_counts(database: Engine) -> dict[str, int]:
    """Rows in every table the API owns."""
    with database.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }


def seed(admin: httpx.Client, site: str) -> dict[str, str]:
    """Cameras A and B with tokens, a third camera whose token is revoked, one stored report."""
    admin.post(
        "/api/v1/admin/sites",
        json={"id": site, "name": "Hostile", "lat": 51.5, "lon": -0.1, "public": True},
    ).raise_for_status()
    tokens: dict[str, str] = {}
    for role, camera in (("camera-a", "cam-a"), ("camera-b", "cam-b"), ("revoked", "cam-gone")):
        admin.post(
            "/api/v1/admin/cameras",
            json={
                "id": camera,
                "site_id": site,
                "lines": [
                    {"name": "main", "direction_names": {"down": "southbound", "up": "northbound"}}
                ],
                "zones": [{"name": "approach", "lanes": 2, "length_m": 40.0}],
            },
        ).raise_for_status()
        issued = admin.post(f"/api/v1/admin/cameras/{camera}/tokens")
        issued.raise_for_status()
        tokens[role] = issued.json()["token"]
    admin.delete("/api/v1/admin/cameras/cam-gone/tokens").raise_for_status()
    stored = httpx.post(
        f"{admin.base_url}/api/v1/reports",
        json=batch(make_report("cam-a", T0, zones=[zone_row()])),
        headers={"Authorization": f"Bearer {tokens['camera-a']}"},
    )
    assert stored.status_code == 200, stored.text
    return tokens | {"garbage": "tly_not-a-real-token", "admin": admin.headers["Authorization"][7:]}


@pytest.fixture(scope="module")
def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A real server on the session's migrated database (SQLite and PostgreSQL), seeded."""
    database = make_engine(database_url)
    try:
        with (
            running_server(tmp_path_factory.mktemp("hostile"), database_url) as server,
            server.admin() as admin,
        ):
            yield World(server, database, "site-h", seed(admin, "site-h"))
    finally:
        database.dispose()


def declared_oversize(server: TallyServer, case: Hostile, token: str) -> tuple[int, bytes]:
    """Headers that promise a huge body, then nothing: the server must answer without waiting."""
    parts = urlsplit(server.base_url)
    head = (
        f"{case.method} {case.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {case.declared_length}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=REQUEST_TIMEOUT_S) as conn:
        conn.sendall(head.encode())
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def send(world: World, case: Hostile) -> tuple[int, str, bytes]:
    """Status, content type and body of the answer to one hostile request."""
    token = world.tokens[case.token] if case.token else None
    if case.declared_length is not None:
        status, body = declared_oversize(world.server, case, token or "")
        return status, "application/json", body
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if case.content_type:
        headers["Content-Type"] = case.content_type
    content: bytes | Iterator[bytes] | None = case.body
    if case.chunked and case.body is not None:
        payload = case.body
        content = (payload[i : i + 65536] for i in range(0, len(payload), 65536))
    with httpx.Client(base_url=world.server.base_url, timeout=REQUEST_TIMEOUT_S) as client:
        response = client.request(
            case.method, case.path, content=content, headers=headers, params=case.params
        )
    return response.status_code, response.headers.get("content-type", ""), response.content


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_request_gets_a_clear_error_and_stores_nothing(world: World, case: Hostile) -> None:
    before = table_counts(world.database)
    status, content_type, body = send(world, case)
    assert status == case.expect, body[:500]
    assert content_type.startswith("application/json")
    detail = json.loads(body)["detail"]
    assert detail
    text = body.decode()
    assert "Traceback" not in text
    assert 'File "' not in text
    assert table_counts(world.database) == before


def test_server_is_healthy_after_the_barrage(world: World) -> None:
    """Runs after every case (same module, defined last): still answering, data intact."""
    with httpx.Client(base_url=world.server.base_url, timeout=REQUEST_TIMEOUT_S) as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok"}
        summary = client.get(
            "/api/v1/counts/summary",
            params={"site": world.site, "from": "2026-03-02T00:00:00Z", "to": "2026-03-03"},
            headers={"Authorization": f"Bearer {world.tokens['admin']}"},
        )
        assert summary.status_code == 200, summary.text
        assert summary.json()["total"] == 5
        accepted = client.post(
            "/api/v1/reports",
            json=batch(make_report("cam-a", T0.replace(minute=1))),
            headers={"Authorization": f"Bearer {world.tokens['camera-a']}"},
        )
        assert accepted.status_code == 200, accepted.text
