"""Roles on the management endpoints, and sites that editors edit and delete.

The matrix calls every management endpoint as each kind of principal, with a request that
succeeds for those allowed to make it, and checks that a refused request changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, get_args

import pytest
from accounts_testkit import (
    admin_token_headers,
    count_rows,
    events_for,
    now_minute,
    sign_in,
)
from api_testkit import Registered, batch, make_report, register, zone_row
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import schemas
from api.models import (
    ApiToken,
    AuditEvent,
    Camera,
    CameraRollup,
    CountLine,
    CountRecord,
    DeviceHealth,
    IntervalReportRecord,
    LineRollup,
    Site,
    User,
    UserSite,
    Zone,
    ZoneRecord,
)
from api.services.access import ROLE_RANK, ROLES, Role

ADMIN = "/api/v1/admin"
LINES = [{"name": "main", "direction_names": {"down": "southbound", "up": "northbound"}}]


@dataclass(frozen=True)
class Target:
    """What one matrix case acts on: a fresh site with a camera and a device token, and a
    fresh account."""

    reg: Registered
    user_id: int


def site_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Edited",
        "road": "B2",
        "lat": 52.0,
        "lon": 4.5,
        "timezone": "Europe/Amsterdam",
        "description": "moved",
        "public": False,
        "listed": False,
    }
    return body | overrides


Request = tuple[str, str, dict[str, Any] | None]


@dataclass(frozen=True)
class Case:
    """One endpoint: the request for a target, who may make it, and its success status."""

    name: str
    request: Callable[[Target], Request]
    role: Role
    ok: int
    site_scoped: bool = True
    """A principal restricted to the target's site may make it (creating a site is not)."""


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


CASES = [
    Case(
        "create site",
        lambda t: ("POST", f"{ADMIN}/sites", {"id": new_id("s"), "name": "N", "lat": 1, "lon": 2}),
        "editor",
        201,
        site_scoped=False,
    ),
    Case(
        "update site", lambda t: ("PUT", f"{ADMIN}/sites/{t.reg.site}", site_body()), "editor", 200
    ),
    Case(
        "delete site",
        lambda t: ("DELETE", f"{ADMIN}/sites/{t.reg.site}?confirm={t.reg.site}", None),
        "editor",
        204,
    ),
    Case(
        "create camera",
        lambda t: (
            "POST",
            f"{ADMIN}/cameras",
            {"id": new_id("c"), "site_id": t.reg.site, "lines": LINES},
        ),
        "editor",
        201,
    ),
    Case(
        "replace camera",
        lambda t: (
            "PUT",
            f"{ADMIN}/cameras/{t.reg.camera}",
            {"id": t.reg.camera, "site_id": t.reg.site, "lines": LINES, "config_version": 2},
        ),
        "editor",
        200,
    ),
    Case(
        "list tokens",
        lambda t: ("GET", f"{ADMIN}/tokens?camera_id={t.reg.camera}", None),
        "admin",
        200,
    ),
    Case(
        "issue token",
        lambda t: ("POST", f"{ADMIN}/cameras/{t.reg.camera}/tokens", None),
        "admin",
        201,
    ),
    Case(
        "revoke camera tokens",
        lambda t: ("DELETE", f"{ADMIN}/cameras/{t.reg.camera}/tokens", None),
        "admin",
        200,
    ),
    Case(
        "revoke token",
        lambda t: ("DELETE", f"{ADMIN}/tokens/{t.reg.token_id}", None),
        "admin",
        200,
    ),
    Case(
        "create admin token",
        lambda t: ("POST", f"{ADMIN}/admin-tokens", {"name": "ops"}),
        "admin",
        201,
    ),
    Case("read audit log", lambda t: ("GET", f"{ADMIN}/audit", None), "admin", 200),
    Case("list users", lambda t: ("GET", f"{ADMIN}/users", None), "admin", 200),
    Case(
        "create user",
        lambda t: (
            "POST",
            f"{ADMIN}/users",
            {"email": f"{new_id('u')}@example.org", "display_name": "U", "role": "viewer"},
        ),
        "admin",
        201,
    ),
    Case(
        "update user",
        lambda t: ("PATCH", f"{ADMIN}/users/{t.user_id}", {"display_name": "Renamed"}),
        "admin",
        200,
    ),
    Case("delete user", lambda t: ("DELETE", f"{ADMIN}/users/{t.user_id}", None), "admin", 204),
]

PRINCIPALS: dict[str, Role | None] = {
    "anonymous": None,
    "viewer": "viewer",
    "editor": "editor",
    "editor of this site": "editor",
    "editor of another site": "editor",
    "admin (token)": "admin",
    "admin (session)": "admin",
}


def expected(case: Case, who: str) -> tuple[int, str]:
    """The status and a fragment of the refusal's message."""
    role = PRINCIPALS[who]
    if role is None:
        return 401, "sign in"
    if ROLE_RANK[role] < ROLE_RANK[case.role]:
        return 403, f"needs the {case.role} role"
    if who == "editor of another site" or (who == "editor of this site" and not case.site_scoped):
        return 403, "may not manage site"
    return case.ok, ""


@pytest.fixture(scope="module")
def other_site(app: FastAPI) -> str:
    return register(app.state.settings).site


def headers_of(app: FastAPI, who: str, target: Target, other_site: str) -> dict[str, str]:
    if who == "anonymous":
        return {}
    if who == "admin (token)":
        return admin_token_headers(app)
    restrictions = {
        "editor of this site": [target.reg.site, other_site],
        "editor of another site": [other_site],
    }
    role = PRINCIPALS[who]
    assert role is not None
    return sign_in(app, role, restrictions.get(who)).headers


@pytest.mark.parametrize("who", list(PRINCIPALS))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_role_matrix(
    client: TestClient, app: FastAPI, other_site: str, case: Case, who: str
) -> None:
    target = Target(register(app.state.settings), sign_in(app, "viewer").user_id)
    headers = headers_of(app, who, target, other_site)
    method, url, body = case.request(target)
    events_before = count_rows(app, AuditEvent)
    response = client.request(method, url, json=body, headers=headers)
    status, message = expected(case, who)
    assert response.status_code == status, response.text
    changes = count_rows(app, AuditEvent) - events_before
    if status >= 400:
        assert message in response.json()["detail"]
        assert changes == 0
        assert count_rows(app, Site, Site.id == target.reg.site) == 1
    else:
        assert changes == (0 if method == "GET" else 1)


def test_a_cookie_without_its_csrf_token_changes_nothing(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    editor = sign_in(app, "editor")
    cookie_only = {"Cookie": editor.headers["Cookie"]}
    url = f"{ADMIN}/sites/{reg.site}"
    assert client.put(url, json=site_body(), headers=cookie_only).status_code == 403
    assert client.put(url, json=site_body(), headers=editor.headers).status_code == 200


def test_site_update_replaces_every_field_and_keeps_bounds(
    client: TestClient, app: FastAPI
) -> None:
    reg = register(app.state.settings)
    editor = sign_in(app, "editor")
    url = f"{ADMIN}/sites/{reg.site}"
    response = client.put(url, json=site_body(), headers=editor.headers)
    assert response.status_code == 200, response.text
    assert response.json() == site_body(id=reg.site)
    detail = client.get(f"/api/v1/sites/{reg.site}", headers=admin_token_headers(app)).json()
    assert (detail["name"], detail["timezone"], detail["public"]) == (
        "Edited",
        "Europe/Amsterdam",
        False,
    )
    bad_bodies = [
        {k: v for k, v in site_body().items() if k != "public"},  # every field is required
        site_body(lat=91),
        site_body(timezone="Mars/Olympus"),
        site_body(name=""),
        site_body(id=reg.site),  # the id is in the path, not the body
        site_body(name="a\x00b"),
    ]
    for body in bad_bodies:
        assert client.put(url, json=body, headers=editor.headers).status_code == 422, body
    missing = client.put(
        f"{ADMIN}/sites/{new_id('nope')}", json=site_body(), headers=editor.headers
    )
    assert missing.status_code == 404


def test_site_delete_needs_the_id_as_confirmation(client: TestClient, app: FastAPI) -> None:
    reg = register(app.state.settings)
    editor = sign_in(app, "editor")
    url = f"{ADMIN}/sites/{reg.site}"
    assert client.delete(url, headers=editor.headers).status_code == 422
    wrong = client.delete(url, params={"confirm": "yes"}, headers=editor.headers)
    assert wrong.status_code == 422
    assert f"confirm={reg.site}" in wrong.json()["detail"]
    assert count_rows(app, Site, Site.id == reg.site) == 1
    gone = client.delete(url, params={"confirm": reg.site}, headers=editor.headers)
    assert gone.status_code == 204
    assert client.delete(url, params={"confirm": reg.site}, headers=editor.headers).status_code == (
        404
    )


def test_site_delete_removes_its_cameras_and_all_their_data(
    client: TestClient, app: FastAPI
) -> None:
    doomed, kept = register(app.state.settings), register(app.state.settings)
    start = now_minute() - timedelta(minutes=30)
    for reg in (doomed, kept):
        for n in range(3):
            report = make_report(reg.camera, start + timedelta(minutes=n), zones=[zone_row()])
            response = client.post("/api/v1/reports", json=batch(report), headers=reg.auth)
            assert response.status_code == 200, response.text
        beat = {
            "camera_id": reg.camera,
            "sent_at": now_minute().isoformat(),
            "uptime_s": 60.0,
            "outbox_backlog": 0,
            "dropped_reports": 0,
            "streams": [
                {"camera_id": reg.camera, "state": "streaming", "reconnects": 0, "fps": 15.0}
            ],
            "config_version": 1,
        }
        assert client.post("/api/v1/heartbeat", json=beat, headers=reg.auth).status_code == 200
    shared = sign_in(app, "viewer", [doomed.site, kept.site])
    per_camera = [
        Camera,
        ApiToken,
        IntervalReportRecord,
        CountRecord,
        ZoneRecord,
        DeviceHealth,
        LineRollup,
        CameraRollup,
    ]
    for reg in (doomed, kept):
        for model in per_camera:
            column = model.id if model is Camera else model.camera_id
            assert count_rows(app, model, column == reg.camera) > 0, model
    editor = sign_in(app, "editor")
    response = client.delete(
        f"{ADMIN}/sites/{doomed.site}", params={"confirm": doomed.site}, headers=editor.headers
    )
    assert response.status_code == 204, response.text

    for model in per_camera:
        column = model.id if model is Camera else model.camera_id
        assert count_rows(app, model, column == doomed.camera) == 0, model
        assert count_rows(app, model, column == kept.camera) > 0, model
    for model in (CountLine, Zone):
        assert count_rows(app, model, model.camera_id == doomed.camera) == 0, model
    assert count_rows(app, Site, Site.id == doomed.site) == 0
    assert count_rows(app, UserSite, UserSite.site_id == doomed.site) == 0
    assert count_rows(app, UserSite, UserSite.user_id == shared.user_id) == 1
    assert client.post("/api/v1/reports", json=batch(report), headers=doomed.auth).status_code == (
        401
    )
    (event,) = [e for e in events_for(app, doomed.site) if e.action == "site.delete"]
    assert event.details["cameras"] == [doomed.camera]


def test_site_delete_refuses_to_widen_an_account_restricted_to_it(
    client: TestClient, app: FastAPI
) -> None:
    """Deleting a restricted account's only site would leave it with no restriction rows,
    which means every site: an editor restricted to one site could escalate that way."""
    reg, other = register(app.state.settings), register(app.state.settings)
    editor = sign_in(app, "editor", [reg.site])
    url = f"{ADMIN}/sites/{reg.site}"
    refused = client.delete(url, params={"confirm": reg.site}, headers=editor.headers)
    assert refused.status_code == 409
    assert editor.email in refused.json()["detail"]
    assert count_rows(app, Site, Site.id == reg.site) == 1
    admin = admin_token_headers(app)
    moved = client.patch(
        f"{ADMIN}/users/{editor.user_id}", json={"site_ids": [other.site]}, headers=admin
    )
    assert moved.status_code == 200, moved.text
    assert client.delete(url, params={"confirm": reg.site}, headers=admin).status_code == 204
    assert count_rows(app, User, User.id == editor.user_id) == 1


def test_restricted_editor_cannot_move_a_camera_off_a_site_they_do_not_manage(
    client: TestClient, app: FastAPI
) -> None:
    theirs, foreign = register(app.state.settings), register(app.state.settings)
    editor = sign_in(app, "editor", [theirs.site, new_site(client, app)])
    body = {"id": foreign.camera, "site_id": theirs.site, "lines": LINES}
    response = client.put(f"{ADMIN}/cameras/{foreign.camera}", json=body, headers=editor.headers)
    assert response.status_code == 403
    assert "on a site your account may not manage" in response.json()["detail"]
    assert foreign.site not in response.json()["detail"], "which site is not said"
    assert count_rows(app, Camera, Camera.id == foreign.camera, Camera.site_id == foreign.site) == 1


def new_site(client: TestClient, app: FastAPI) -> str:
    site_id = new_id("spare")
    body = {"id": site_id, "name": "Spare", "lat": 0, "lon": 0}
    response = client.post(f"{ADMIN}/sites", json=body, headers=admin_token_headers(app))
    assert response.status_code == 201
    return site_id


def test_the_api_schemas_know_the_same_roles_as_access() -> None:
    """api.schemas cannot import api.services.access (access imports scope, which imports
    schemas), so both name the roles; they must agree, in order."""
    assert get_args(schemas.Role) == ROLES
