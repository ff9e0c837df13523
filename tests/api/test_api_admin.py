"""Admin endpoints, the CLI against a real uvicorn server, settings, migrations, docs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from api_testkit import T0, TEST_SECRET, batch, make_report, register
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import create_engine, inspect, text

from api import migrate
from api.settings import Settings

SITE_YAML = """
site: high-st
config_version: 4
cameras:
  - id: {camera}
    source: rtsp://user:secret@10.0.0.5/stream
    lines:
      - name: main
        points: [[0.1, 0.5], [0.9, 0.5]]
        direction_names: {{down: southbound, up: northbound}}
    zones:
      - name: approach
        polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.4]]
"""


def test_admin_endpoints_register_and_manage_tokens(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    site = {"id": "adm-site", "name": "Admin site", "lat": 1.0, "lon": 2.0, "public": True}
    assert client.post("/api/v1/admin/sites", json=site).status_code == 401
    created = client.post("/api/v1/admin/sites", json=site, headers=admin_headers)
    assert created.status_code in (201, 409)
    camera = {
        "id": "adm-cam",
        "site_id": "adm-site",
        "lines": [{"name": "main", "direction_names": {"down": "in", "up": "out"}}],
    }
    put = client.put("/api/v1/admin/cameras/adm-cam", json=camera, headers=admin_headers)
    assert put.status_code == 200, put.text
    first = client.post("/api/v1/admin/cameras/adm-cam/tokens", headers=admin_headers).json()
    device = {"Authorization": f"Bearer {first['token']}"}
    report = make_report("adm-cam", T0, {("main", "in", "car"): 1})
    assert client.post("/api/v1/reports", json=batch(report), headers=device).status_code == 200
    rotated = client.post(
        "/api/v1/admin/cameras/adm-cam/tokens", params={"rotate": True}, headers=admin_headers
    )
    assert rotated.status_code == 201
    assert client.post("/api/v1/reports", json=batch(report), headers=device).status_code == 401
    revoked = client.delete("/api/v1/admin/cameras/adm-cam/tokens", headers=admin_headers)
    assert revoked.json() == {"revoked": 1}
    assert (
        client.delete("/api/v1/admin/tokens/0000000000000000", headers=admin_headers).status_code
        == 404
    )
    assert client.post("/api/v1/reports", json=batch(report), headers=device).status_code == 401


def test_device_token_is_not_an_admin_token(client: TestClient, app: FastAPI) -> None:

    reg = register(app.state.settings)
    response = client.post("/api/v1/admin/admin-tokens", json={"name": "x"}, headers=reg.auth)
    assert response.status_code == 401


def test_settings_refuse_the_default_secret_outside_development() -> None:
    with pytest.raises(ValidationError, match="TALLY_SECRET_KEY"):
        Settings(environment="production")
    assert Settings(environment="production", secret_key=TEST_SECRET).environment == "production"


@pytest.mark.parametrize(
    "empty_database_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_migrations_upgrade_from_empty_and_downgrade(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"sites", "cameras", "interval_reports", "count_rows", "line_rollups"} <= tables
        migrate.downgrade(empty_database_url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(empty_database_url)
    finally:
        engine.dispose()


def test_docs_page_works_offline(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "cdn" not in page.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    ids = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {"post_reports", "post_heartbeat", "get_count_series", "get_open_counts_csv"} <= ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "api", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`python -m api serve` on a free loopback port with a fresh SQLite file."""
    env = os.environ | {
        "TALLY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "TALLY_INGEST_MAX_AGE_DAYS": "3650",  # the report is dated T0, in March 2026
    }
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, env
    finally:
        server.terminate()
        _, logs = server.communicate(timeout=10)
        assert "tally_" not in logs.decode() or "***" in logs.decode()


def test_cli_and_a_real_server_end_to_end(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = served
    config = tmp_path / "site.yaml"
    config.write_text(SITE_YAML.format(camera="cam-1"))
    cli(
        env,
        "add-site",
        "--id",
        "high-st",
        "--name",
        "High St",
        "--lat",
        "51.5",
        "--lon",
        "-0.1",
        "--public",
    )
    cli(env, "add-camera", "--config", str(config), "--camera-id", "cam-1", "--site", "high-st")
    token = cli(env, "issue-token", "--camera", "cam-1")
    assert token.startswith("tally_")
    assert "\n" not in token
    headers = {"Authorization": f"Bearer {token}"}
    report = make_report("cam-1", T0, {("main", "southbound", "bus"): 4})
    assert (
        httpx.post(f"{base}/api/v1/reports", json=batch(report), headers=headers).status_code == 200
    )
    password = cli(
        env, "add-user", "--email", "Planner@Example.org", "--name", "P", "--role", "viewer"
    )
    assert len(password) >= 12
    assert "\n" not in password
    assert "planner@example.org\tviewer\tP\tall sites\tnever" in cli(env, "list-users")
    window = {"site": "high-st", "from": T0.isoformat(), "to": "2026-03-02T09:00:00Z"}
    with httpx.Client(base_url=base) as planner:
        assert planner.get("/api/v1/counts/series", params=window).status_code == 401
        login = {"email": "planner@example.org", "password": password}
        assert planner.post("/api/v1/auth/login", json=login).status_code == 200
        series = planner.get("/api/v1/counts/series", params=window).json()
        assert series["total"] == 4
        detail = planner.get("/api/v1/sites/high-st").json()
    assert detail["cameras"][0]["config_version"] == 1, "the camera's own first version"
    assert "secret" not in str(detail)
    cli(env, "revoke-token", "--camera", "cam-1")
    assert (
        httpx.post(f"{base}/api/v1/reports", json=batch(report), headers=headers).status_code == 401
    )


def test_cli_reports_bad_input_clearly(tmp_path: Path) -> None:
    env = os.environ | {"TALLY_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    cli(env, "migrate")
    result = subprocess.run(
        [sys.executable, "-m", "api", "issue-token", "--camera", "nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "camera 'nope' does not exist" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("days", ["0", "3651", "seven"])
def test_cli_token_expiry_must_be_a_bounded_number_of_days(tmp_path: Path, days: str) -> None:
    env = os.environ | {"TALLY_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "api", "issue-token", "--camera", "c", "--expires-in-days", days],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "must be a whole number of days from 1 to 3650" in result.stderr


def test_cli_issues_a_device_token_that_expires(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    env = os.environ | {"TALLY_DATABASE_URL": url}
    cli(env, "migrate")
    config = tmp_path / "site.yaml"
    config.write_text(SITE_YAML.format(camera="cam-1"))
    cli(env, "add-site", "--id", "s", "--name", "S", "--lat", "1", "--lon", "2")
    cli(env, "add-camera", "--config", str(config), "--camera-id", "cam-1", "--site", "s")
    before = datetime.now(UTC)
    token = cli(env, "issue-token", "--camera", "cam-1", "--expires-in-days", "7")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            (expires,) = connection.execute(
                text("SELECT expires_at FROM api_tokens WHERE id = :id"),
                {"id": token.split("_")[1]},
            ).one()
    finally:
        engine.dispose()
    expires_at = datetime.fromisoformat(str(expires)).replace(tzinfo=UTC)
    assert timedelta(days=7) <= expires_at - before <= timedelta(days=7, minutes=1)
