"""Escalation paths found in review (issue #9): e-mail linking through single sign-on, admins
with a site restriction they could lift, and CSRF headers that are not ASCII."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from api_testkit import add_account, log_in, register, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.db import session_scope
from api.schemas import UserIn
from api.services import users
from api.services.errors import DomainError
from api.services.oidc import Identity, SignOnError, SingleSignOn, sign_in


def identity(email: str, verified: bool | None, role: str = "viewer") -> Identity:
    subject = f"https://idp.example|{uuid.uuid4().hex}"
    return Identity(subject=subject, email=email, email_verified=verified, name="P", role=role)  # type: ignore[arg-type]


@pytest.mark.parametrize("verified", [None, False])
def test_sso_links_a_local_account_only_by_a_verified_address(
    app: FastAPI, verified: bool | None
) -> None:
    local = add_account(app.state.settings, "admin")
    with session_scope(app.state.session_factory) as session, pytest.raises(SignOnError):
        sign_in(session, identity(local.email, verified, "viewer"), "127.0.0.1")


def test_sso_links_a_verified_address(app: FastAPI) -> None:
    local = add_account(app.state.settings, "viewer")
    with session_scope(app.state.session_factory) as session:
        user = sign_in(session, identity(local.email, True, "editor"), "127.0.0.1")
        assert (user.email, user.role) == (local.email, "editor")


def test_sso_does_not_make_a_restricted_account_an_admin(app: FastAPI) -> None:
    reg = register(app.state.settings)
    local = add_account(app.state.settings, "viewer", site_ids=[reg.site])
    with session_scope(app.state.session_factory) as session, pytest.raises(SignOnError):
        sign_in(session, identity(local.email, True, "admin"), "127.0.0.1")
    with session_scope(app.state.session_factory) as session:
        user = users.find_user(session, local.email)
        assert user is not None
        assert user.role == "viewer"


def test_no_path_creates_a_restricted_admin(app: FastAPI) -> None:
    reg = register(app.state.settings)
    spec = UserIn(email="ra@example.org", display_name="RA", role="admin", site_ids=[reg.site])
    with (
        session_scope(app.state.session_factory) as session,
        pytest.raises(DomainError, match="cannot be restricted"),
    ):
        users.create_user(session, spec, "a long enough passphrase")


def test_an_account_cannot_change_its_own_sites(app: FastAPI) -> None:
    reg = register(app.state.settings)
    me = add_account(app.state.settings, "admin")
    with signed_in(app, log_in(TestClient(app), me)) as client:
        listed = client.get("/api/v1/admin/users").json()["users"]
        (mine,) = [u for u in listed if u["email"] == me.email]
        change = {"site_ids": [reg.site]}
        response = client.patch(f"/api/v1/admin/users/{mine['id']}", json=change)
    assert response.status_code == 422
    assert "your own account" in response.json()["detail"]


def test_a_non_ascii_csrf_header_is_refused_not_a_500(app: FastAPI) -> None:
    account = add_account(app.state.settings, "viewer")
    login = log_in(TestClient(app), account)
    with TestClient(app, raise_server_exceptions=False, cookies=login.cookies) as client:
        response = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": "é".encode()})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ("access_denied", "access_denied"),
        ("call 555-0100, your account is locked", "unknown error"),
    ],
)
def test_only_known_provider_errors_are_repeated(app: FastAPI, error: str, shown: str) -> None:
    settings = app.state.settings.model_copy(
        update={"oidc_issuer": "http://127.0.0.1:9", "oidc_client_id": "tally"}
    )
    with pytest.raises(SignOnError, match=shown):
        asyncio.run(SingleSignOn(settings).finish("http://x/cb", None, {"error": error}))
