"""Device and admin tokens: expiry, the list with status and last use, revocation by id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from accounts_testkit import admin_token_headers, now_minute
from api_testkit import Registered, batch, make_report, register
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, update

from api.db import session_scope
from api.models import ApiToken

ADMIN = "/api/v1/admin"


@pytest.fixture
def admin(app: FastAPI) -> dict[str, str]:
    return admin_token_headers(app)


def set_token(app: FastAPI, token_id: str, **values: Any) -> None:
    with session_scope(app.state.session_factory) as session:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(**values))


def token_rows(client: TestClient, admin: dict[str, str], camera_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{ADMIN}/tokens", params={"camera_id": camera_id}, headers=admin)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["tokens"]
    return rows


def post_report(client: TestClient, camera: str, token: str, minute: int) -> int:
    report = make_report(camera, now_minute() - timedelta(minutes=60 - minute))
    response = client.post(
        "/api/v1/reports", json=batch(report), headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code


def test_issue_with_expiry_and_list_every_status(
    client: TestClient, app: FastAPI, admin: dict[str, str]
) -> None:
    reg = register(app.state.settings)
    issued = client.post(
        f"{ADMIN}/cameras/{reg.camera}/tokens", params={"expires_in_days": 30}, headers=admin
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert post_report(client, reg.camera, body["token"], 0) == 200
    revoked = client.post(f"{ADMIN}/cameras/{reg.camera}/tokens", headers=admin).json()
    assert revoked["expires_at"] is None
    assert client.delete(f"{ADMIN}/tokens/{revoked['token_id']}", headers=admin).json() == {
        "revoked": 1
    }
    set_token(app, reg.token_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))

    rows = {row["token_id"]: row for row in token_rows(client, admin, reg.camera)}
    assert {t: r["status"] for t, r in rows.items()} == {
        body["token_id"]: "live",
        revoked["token_id"]: "revoked",
        reg.token_id: "expired",
    }
    assert rows[body["token_id"]]["last_used_at"] is not None
    assert rows[revoked["token_id"]]["last_used_at"] is None
    assert all(row["kind"] == "device" and row["camera_id"] == reg.camera for row in rows.values())
    listing = client.get(f"{ADMIN}/tokens", headers=admin)
    assert body["token"] not in listing.text
    assert "token_hash" not in listing.text
    kinds = {row["kind"] for row in listing.json()["tokens"]}
    assert kinds == {"device", "admin"}


@pytest.mark.parametrize("days", [0, -1, 3651, "soon"])
def test_expiry_is_bounded(
    client: TestClient, app: FastAPI, admin: dict[str, str], days: object
) -> None:
    reg = register(app.state.settings)
    url = f"{ADMIN}/cameras/{reg.camera}/tokens"
    assert client.post(url, params={"expires_in_days": days}, headers=admin).status_code == 422
    assert client.post(url, params={"expires_in_days": 3650}, headers=admin).status_code == 201


def test_an_expired_device_token_is_refused(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    assert post_report(client, reg.camera, reg.token, 0) == 200
    set_token(app, reg.token_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert post_report(client, reg.camera, reg.token, 1) == 401
    set_token(app, reg.token_id, expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert post_report(client, reg.camera, reg.token, 2) == 200


def test_an_expired_admin_token_is_refused(
    client: TestClient, app: FastAPI, admin: dict[str, str]
) -> None:
    created = client.post(
        f"{ADMIN}/admin-tokens", params={"expires_in_days": 1}, json={"name": "temp"}, headers=admin
    )
    assert created.status_code == 201, created.text
    temp = {"Authorization": f"Bearer {created.json()['token']}"}
    assert client.get(f"{ADMIN}/audit", params={"limit": 1}, headers=temp).status_code == 200
    set_token(app, created.json()["token_id"], expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert client.get(f"{ADMIN}/audit", params={"limit": 1}, headers=temp).status_code == 401


@pytest.fixture
def token_writes(app: FastAPI) -> Iterator[list[str]]:
    """Every UPDATE of api_tokens the app's engine sends, while the test runs."""
    engine: Engine = app.state.session_factory.kw["bind"]
    writes: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    yield writes
    event.remove(engine, "before_cursor_execute", seen)


def test_last_use_is_written_at_most_once_a_minute(
    client: TestClient, app: FastAPI, admin: dict[str, str], token_writes: list[str]
) -> None:
    reg = register(app.state.settings)
    assert post_report(client, reg.camera, reg.token, 0) == 200
    assert post_report(client, reg.camera, reg.token, 1) == 200
    assert len(token_writes) == 1
    (row,) = token_rows(client, admin, reg.camera)
    first_use = datetime.fromisoformat(row["last_used_at"])
    assert abs(first_use - datetime.now(UTC)) < timedelta(minutes=1)

    set_token(app, reg.token_id, last_used_at=datetime.now(UTC) - timedelta(seconds=61))
    token_writes.clear()
    assert post_report(client, reg.camera, reg.token, 2) == 200
    assert post_report(client, reg.camera, reg.token, 3) == 200
    assert len(token_writes) == 1
    (row,) = token_rows(client, admin, reg.camera)
    assert datetime.fromisoformat(row["last_used_at"]) >= first_use


def test_revoke_by_id_then_again_is_404(
    client: TestClient, app: FastAPI, admin: dict[str, str]
) -> None:
    reg: Registered = register(app.state.settings)
    url = f"{ADMIN}/tokens/{reg.token_id}"
    assert client.delete(url, headers=admin).json() == {"revoked": 1}
    assert post_report(client, reg.camera, reg.token, 0) == 401
    again = client.delete(url, headers=admin)
    assert again.status_code == 404
    assert reg.token_id in again.json()["detail"]
    (row,) = token_rows(client, admin, reg.camera)
    assert row["status"] == "revoked"
    assert row["revoked_at"] is not None
