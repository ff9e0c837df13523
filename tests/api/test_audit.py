"""The audit log: every management action is recorded with who, what, when and from where,
in the transaction of the change, and no secret ever reaches it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from accounts_testkit import admin_token_headers, events_for, sign_in
from api_testkit import register
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.models import AuditEvent

ADMIN = "/api/v1/admin"
LINES = [{"name": "main", "direction_names": {"down": "in", "up": "out"}}]
TESTCLIENT_IP = "testclient"


def last_event_id(app: FastAPI) -> int:
    with app.state.session_factory() as session:
        return session.scalar(select(func.max(AuditEvent.id))) or 0


def events_since(app: FastAPI, first_id: int) -> list[AuditEvent]:
    with app.state.session_factory() as session:
        statement = select(AuditEvent).where(AuditEvent.id >= first_id).order_by(AuditEvent.id)
        return list(session.scalars(statement))


def test_every_action_is_recorded_without_secrets(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    admin = sign_in(app, "admin")
    headers = admin.headers
    site, camera = f"aud-{uuid.uuid4().hex[:8]}", f"audcam-{uuid.uuid4().hex[:8]}"
    email = f"aud-{uuid.uuid4().hex[:8]}@example.org"
    site_body = {"name": "Audit", "lat": 1.0, "lon": 2.0}
    secrets: list[str] = []
    first_id, started = last_event_id(app) + 1, datetime.now(UTC) - timedelta(seconds=1)

    def call(method: str, url: str, body: Any = None, **params: Any) -> Any:
        response = client.request(method, url, json=body, params=params, headers=headers)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    call("POST", f"{ADMIN}/sites", {"id": site, **site_body})
    call(
        "PUT",
        f"{ADMIN}/sites/{site}",
        {
            **site_body,
            "name": "Renamed",
            "road": "",
            "timezone": "UTC",
            "description": "",
            "public": True,
            "listed": True,
        },
    )
    call("POST", f"{ADMIN}/cameras", {"id": camera, "site_id": site, "lines": LINES})
    call(
        "PUT",
        f"{ADMIN}/cameras/{camera}",
        {"id": camera, "site_id": site, "lines": LINES, "config_version": 3},
    )
    issued = call("POST", f"{ADMIN}/cameras/{camera}/tokens", expires_in_days=7)
    rotated = call("POST", f"{ADMIN}/cameras/{camera}/tokens", rotate=True)
    call("DELETE", f"{ADMIN}/tokens/{rotated['token_id']}")
    call("DELETE", f"{ADMIN}/cameras/{reg.camera}/tokens")
    admin_token = call("POST", f"{ADMIN}/admin-tokens", {"name": "ops laptop"})
    created = call(
        "POST", f"{ADMIN}/users", {"email": email.upper(), "display_name": "A", "role": "viewer"}
    )
    user_id = created["user"]["id"]
    call("PATCH", f"{ADMIN}/users/{user_id}", {"role": "editor", "site_ids": [site]})
    call("PATCH", f"{ADMIN}/users/{user_id}", {"site_ids": None})
    call("DELETE", f"{ADMIN}/users/{user_id}")
    call("DELETE", f"{ADMIN}/sites/{site}", confirm=site)
    secrets += [issued["token"], rotated["token"], admin_token["token"], created["password"]]
    secrets += [headers["Cookie"].split("=", 1)[1], headers["X-CSRF-Token"]]

    expected = [
        (site, "site.create", {"name": "Audit", "public": False, "timezone": "UTC"}),
        (site, "site.update", {"changed": {"name": "Renamed", "public": True}}),
        (camera, "camera.create", {"site_id": site, "interval_seconds": 60}),
        (camera, "camera.replace", {"config_version": 3}),
        (issued["token_id"], "token.issue", {"camera_id": camera, "revoked": 0}),
        (
            rotated["token_id"],
            "token.rotate",
            {"camera_id": camera, "revoked": 1, "expires_at": None},
        ),
        (rotated["token_id"], "token.revoke", {"kind": "device", "camera_id": camera}),
        (reg.camera, "token.revoke_camera", {"revoked": 1}),
        (admin_token["token_id"], "admin_token.create", {"name": "ops laptop"}),
        (email, "user.create", {"role": "viewer", "display_name": "A"}),
        (email, "user.update", {"changed": {"role": "editor", "site_ids": [site]}}),
        (email, "user.update", {"changed": {"site_ids": None}}),
        (email, "user.delete", {"role": "editor"}),
        (site, "site.delete", {"cameras": [camera]}),
    ]
    recorded = events_since(app, first_id)
    assert [(e.target, e.action) for e in recorded] == [(t, a) for t, a, _ in expected]
    for event, (_, action, details) in zip(recorded, expected, strict=True):
        assert (event.actor, event.role, event.client_ip) == (admin.email, "admin", TESTCLIENT_IP)
        assert event.at >= started
        assert details.items() <= event.details.items(), (action, event.details)
    issued_event = next(e for e in events_for(app, issued["token_id"]) if e.action == "token.issue")
    assert datetime.fromisoformat(issued_event.details["expires_at"]) > datetime.now(UTC)

    with app.state.session_factory() as session:
        everything = [
            json.dumps([e.actor, e.role, e.action, e.target, e.client_ip, e.details])
            for e in session.scalars(select(AuditEvent))
        ]
    for secret in secrets:
        assert not any(secret in row for row in everything)


def test_a_refused_change_records_nothing(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    admin = admin_token_headers(app)
    before = len(events_for(app, reg.site))
    body = {"id": reg.site, "name": "Again", "lat": 0, "lon": 0}
    assert client.post(f"{ADMIN}/sites", json=body, headers=admin).status_code == 409
    camera = {"id": reg.camera, "site_id": "nowhere-" + uuid.uuid4().hex[:6], "lines": LINES}
    assert (
        client.put(f"{ADMIN}/cameras/{reg.camera}", json=camera, headers=admin).status_code == 404
    )
    assert len(events_for(app, reg.site)) == before
    assert [e.action for e in events_for(app, reg.camera)] == ["camera.create"]


def test_the_command_line_is_recorded_as_cli(app: FastAPI) -> None:
    """Services called without a principal (the CLI; here the test kit's registration) say so."""
    reg = register(app.state.settings)
    (created,) = events_for(app, reg.site)
    assert (created.action, created.actor, created.role, created.client_ip) == (
        "site.create",
        "cli",
        "",
        "",
    )
    assert [e.action for e in events_for(app, reg.token_id)] == ["token.issue"]


def test_the_log_pages_newest_first(client: TestClient, app: FastAPI) -> None:
    admin = admin_token_headers(app)
    for _ in range(3):
        register(app.state.settings)
    first = client.get(f"{ADMIN}/audit", params={"limit": 4}, headers=admin).json()["events"]
    ids = [e["id"] for e in first]
    assert len(ids) == 4
    assert ids == sorted(ids, reverse=True)
    page = client.get(
        f"{ADMIN}/audit", params={"limit": 2, "before_id": ids[1]}, headers=admin
    ).json()["events"]
    assert [e["id"] for e in page] == ids[2:4]
    assert set(first[0]) == {
        "id",
        "at",
        "actor",
        "role",
        "action",
        "target",
        "client_ip",
        "details",
    }


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 501}, {"before_id": 0}, {"before_id": 2**31}]
)
def test_the_log_refuses_bad_paging(
    client: TestClient, app: FastAPI, params: dict[str, int]
) -> None:
    response = client.get(f"{ADMIN}/audit", params=params, headers=admin_token_headers(app))
    assert response.status_code == 422
