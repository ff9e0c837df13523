"""Account management by admins: create with a generated password, change role, sites and
disabled (ending sessions), delete; an admin keeps their own account."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from accounts_testkit import SignedIn, admin_token_headers, count_rows, sign_in
from api_testkit import register
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.models import LoginSession, User, UserSite
from api.services import login, users

USERS = "/api/v1/admin/users"
ME = "/api/v1/auth/me"
"""200 for a live session, 401 once it has ended."""


@pytest.fixture
def admin(app: FastAPI) -> dict[str, str]:
    return admin_token_headers(app)


def new_email() -> str:
    return f"new-{uuid.uuid4().hex[:8]}@example.org"


def create(client: TestClient, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"email": new_email(), "display_name": "New Planner", "role": "viewer"} | fields
    response = client.post(USERS, json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_create_returns_a_working_password_once(
    client: TestClient, app: FastAPI, admin: dict[str, str]
) -> None:
    email = new_email()
    reg = register(app.state.settings)
    created = create(client, admin, email=f"  {email.upper()} ", role="editor", site_ids=[reg.site])
    user = created["user"]
    assert user == user | {
        "email": email,
        "display_name": "New Planner",
        "role": "editor",
        "site_ids": [reg.site],
        "disabled": False,
        "sso": False,
        "last_login_at": None,
    }
    with app.state.session_factory() as session:
        stored = users.find_user(session, email)
        assert stored is not None
        assert login.verify_password(stored, created["password"])
        assert created["password"] not in (stored.password_hash or "")
    listed = client.get(USERS, headers=admin).json()["users"]
    (mine,) = [u for u in listed if u["id"] == user["id"]]
    assert mine == user
    assert created["password"] not in str(listed)
    assert "password" not in str(listed)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "display_name": "X", "role": "viewer"},
        {"email": "a@b", "display_name": "X", "role": "viewer"},
        {"email": "a b@example.org", "display_name": "X", "role": "viewer"},
        {"email": "x@example.org", "display_name": "", "role": "viewer"},
        {"email": "x@example.org", "display_name": "X", "role": "owner"},
        {"email": "x@example.org", "display_name": "X", "role": "viewer", "site_ids": []},
        {"email": "x@example.org", "display_name": "X", "role": "viewer", "password": "mine"},
        {"email": "x@example.org", "display_name": "X", "role": "admin", "site_ids": ["s"]},
    ],
)
def test_create_validates(client: TestClient, admin: dict[str, str], body: dict[str, Any]) -> None:
    assert client.post(USERS, json=body, headers=admin).status_code == 422


def test_email_is_unique_ignoring_case_and_sites_must_exist(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = create(client, admin)
    again = {"email": created["user"]["email"].upper(), "display_name": "Y", "role": "viewer"}
    conflict = client.post(USERS, json=again, headers=admin)
    assert conflict.status_code == 409
    assert created["user"]["email"] in conflict.json()["detail"]
    nowhere = {"email": new_email(), "display_name": "Y", "role": "viewer", "site_ids": ["nope"]}
    assert client.post(USERS, json=nowhere, headers=admin).status_code == 404


def lives(client: TestClient, who: SignedIn) -> bool:
    status = client.get(ME, headers=who.headers).status_code
    assert status in (200, 401)
    return status == 200


@pytest.mark.parametrize(
    ("patch", "ends_sessions"),
    [
        ({"display_name": "Renamed"}, False),
        ({"role": "viewer"}, False),  # the same role: nothing changes
        ({"role": "editor"}, True),
        ({"site_ids": "OTHER"}, True),
        ({"disabled": True}, True),
    ],
)
def test_patch_ends_sessions_when_rights_change(
    client: TestClient,
    app: FastAPI,
    admin: dict[str, str],
    patch: dict[str, Any],
    ends_sessions: bool,
) -> None:
    reg = register(app.state.settings)
    planner = sign_in(app, "viewer")
    second = sign_in(app, "viewer")  # another account's session is untouched
    assert lives(client, planner)
    if patch.get("site_ids") == "OTHER":
        patch = {"site_ids": [reg.site]}
    response = client.patch(f"{USERS}/{planner.user_id}", json=patch, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == response.json() | patch
    assert lives(client, planner) is not ends_sessions
    assert lives(client, second)
    revoked = count_rows(
        app,
        LoginSession,
        LoginSession.user_id == planner.user_id,
        LoginSession.revoked_at.is_not(None),
    )
    assert revoked == int(ends_sessions)


def test_restriction_is_replaced_and_lifted(
    client: TestClient, app: FastAPI, admin: dict[str, str]
) -> None:
    one, two = register(app.state.settings), register(app.state.settings)
    user = create(client, admin, site_ids=[one.site, two.site])["user"]
    url = f"{USERS}/{user['id']}"
    assert sorted(user["site_ids"]) == sorted([one.site, two.site])
    assert client.patch(url, json={"site_ids": [two.site]}, headers=admin).json()["site_ids"] == [
        two.site
    ]
    assert client.patch(url, json={"site_ids": None}, headers=admin).json()["site_ids"] is None
    assert count_rows(app, UserSite, UserSite.user_id == user["id"]) == 0
    promote = client.patch(url, json={"role": "admin", "site_ids": [one.site]}, headers=admin)
    assert promote.status_code == 422
    assert "cannot be restricted" in promote.json()["detail"]


@pytest.mark.parametrize("body", [{}, {"role": None}, {"disabled": None}, {"email": "x@y.org"}])
def test_patch_refuses_empty_null_and_unknown_fields(
    client: TestClient, admin: dict[str, str], body: dict[str, Any]
) -> None:
    user = create(client, admin)["user"]
    assert client.patch(f"{USERS}/{user['id']}", json=body, headers=admin).status_code == 422


@pytest.mark.parametrize(
    ("method", "body", "word"),
    [
        ("PATCH", {"role": "editor"}, "demote"),
        ("PATCH", {"disabled": True}, "disable"),
        ("DELETE", None, "delete"),
    ],
)
def test_an_admin_cannot_lock_themself_out(
    client: TestClient, app: FastAPI, method: str, body: dict[str, Any] | None, word: str
) -> None:
    me = sign_in(app, "admin")
    url = f"{USERS}/{me.user_id}"
    response = client.request(method, url, json=body, headers=me.headers)
    assert response.status_code == 422
    assert f"cannot {word} your own account" in response.json()["detail"]
    assert lives(client, me)
    allowed = client.patch(url, json={"display_name": "Still me"}, headers=me.headers)
    assert allowed.status_code == 200
    other_admin = sign_in(app, "admin")
    assert client.request(method, url, json=body, headers=other_admin.headers).status_code in (
        200,
        204,
    )


def test_delete_removes_the_account_its_sessions_and_sites(
    client: TestClient, app: FastAPI, admin: dict[str, str]
) -> None:
    reg = register(app.state.settings)
    planner = sign_in(app, "viewer", [reg.site])
    assert lives(client, planner)
    url = f"{USERS}/{planner.user_id}"
    assert client.delete(url, headers=admin).status_code == 204
    assert not lives(client, planner)
    for model, column in ((User, User.id), (LoginSession, LoginSession.user_id)):
        assert count_rows(app, model, column == planner.user_id) == 0
    assert count_rows(app, UserSite, UserSite.user_id == planner.user_id) == 0
    assert client.delete(url, headers=admin).status_code == 404
    assert client.patch(url, json={"display_name": "x"}, headers=admin).status_code == 404
    assert client.delete(f"{USERS}/0", headers=admin).status_code == 422
