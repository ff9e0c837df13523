"""Accounts and login sessions on SQLite and PostgreSQL: password login, the session cookie,
idle and absolute expiry, revocation, CSRF, the login rate limit, roles on real endpoints,
the account commands of the CLI, and one round trip against a real uvicorn server."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_testkit import (
    Account,
    Login,
    add_account,
    log_in,
    register,
    settings_for,
    signed_in,
)
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.db import session_scope
from api.models import AuditEvent, LoginSession, User
from api.services.login import SESSION_COOKIE
from tests.support.databases import scratch_postgres_database
from tests.support.tally_api import running_server

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
LOGOUT = "/api/v1/auth/logout"
PASSWORD = "/api/v1/auth/password"


def site_body(**overrides: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    return {"id": f"auth-{suffix}", "name": "Auth site", "lat": 51.5, "lon": -0.1} | overrides


def credentials(account: Account, password: str | None = None) -> dict[str, str]:
    return {"email": account.email, "password": account.password if password is None else password}


def stored_session(app: FastAPI, login: Login) -> LoginSession:
    with app.state.session_factory() as session:
        record = session.get(LoginSession, login.cookie.partition(".")[0])
    assert record is not None
    return record


def move_session(app: FastAPI, login: Login, **times: datetime) -> None:
    """Set a stored session's timestamps: how the tests make time pass."""
    with session_scope(app.state.session_factory) as session:
        record = session.get(LoginSession, login.cookie.partition(".")[0])
        assert record is not None
        for name, value in times.items():
            setattr(record, name, value)


def set_user(app: FastAPI, account: Account, **fields: Any) -> None:
    with session_scope(app.state.session_factory) as session:
        user = session.scalars(select(User).where(User.email == account.email)).one()
        for name, value in fields.items():
            setattr(user, name, value)


def me_status(app: FastAPI, login: Login) -> int:
    with signed_in(app, login) as client:
        return client.get(ME).status_code


@pytest.fixture
def viewer(app: FastAPI) -> Account:
    return add_account(app.state.settings, "viewer")


def test_login_me_and_logout(app: FastAPI, client: TestClient, viewer: Account) -> None:
    response = client.post(LOGIN, json=credentials(viewer))
    assert response.status_code == 200, response.text
    me = response.json()
    assert me | {"csrf_token": None} == {
        "email": viewer.email,
        "display_name": "Test viewer",
        "role": "viewer",
        "site_ids": None,
        "csrf_token": None,
        "via": "session",
    }
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes
    login = Login(response.cookies[SESSION_COOKIE], me["csrf_token"])
    record = stored_session(app, login)
    assert login.cookie.partition(".")[2] not in record.secret_hash
    assert record.expires_at - record.created_at == timedelta(hours=12)
    with signed_in(app, login) as planner:
        assert planner.get(ME).json() == me
        out = planner.post(LOGOUT)
        assert out.status_code == 204
        assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    assert stored_session(app, login).revoked_at is not None
    assert me_status(app, login) == 401


def test_the_cookie_is_secure_over_https(app: FastAPI, viewer: Account) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        response = client.post(LOGIN, json=credentials(viewer))
    assert "secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.org", "password": "x", "remember": True},
        {"email": "a@example.org"},
        {"email": "a" * 250 + "@example.org", "password": "x"},
        {"email": "a@example.org", "password": "x" * 1025},
        {"email": "not an address", "password": "x"},
    ],
    ids=["extra-field", "no-password", "long-email", "long-password", "not-an-email"],
)
def test_login_body_is_strict(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post(LOGIN, json=body).status_code == 422


def test_unknown_email_and_wrong_password_look_the_same(
    client: TestClient, viewer: Account
) -> None:
    """Same status and message, and an unknown e-mail still costs an Argon2 verification."""

    def attempt(body: dict[str, str]) -> tuple[float, int, str]:
        started = time.perf_counter()
        response = client.post(LOGIN, json=body)
        return time.perf_counter() - started, response.status_code, response.text

    wrong = [attempt(credentials(viewer, "wrong password, long enough")) for _ in range(3)]
    unknown = [attempt({"email": "nobody@example.org", "password": "x" * 20}) for _ in range(3)]
    assert {(status, text) for _, status, text in wrong + unknown} == {
        (401, '{"detail":"wrong e-mail or password"}')
    }
    wrong_s = statistics.median(t for t, _, _ in wrong)
    unknown_s = statistics.median(t for t, _, _ in unknown)
    assert unknown_s > 0.4 * wrong_s, (unknown_s, wrong_s)


def rate_limited_app(database_url: str) -> FastAPI:
    return create_app(settings_for(database_url, login_rate_limit="3/minute"))


def test_failed_logins_are_limited_per_account(database_url: str) -> None:
    app = rate_limited_app(database_url)
    target, bystander = add_account(app.state.settings), add_account(app.state.settings)
    with TestClient(app, client=("192.0.2.1", 1000)) as attacker:
        for _ in range(3):
            assert (
                attacker.post(LOGIN, json=credentials(target, "guess-guess-guess")).status_code
                == 401
            )
        refused = attacker.post(LOGIN, json=credentials(target))
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    with TestClient(app, client=("192.0.2.2", 1000)) as elsewhere:
        assert elsewhere.post(LOGIN, json=credentials(target)).status_code == 429
        assert elsewhere.post(LOGIN, json=credentials(bystander)).status_code == 200


def test_failed_logins_are_limited_per_address(database_url: str) -> None:
    app = rate_limited_app(database_url)
    sprayed = [add_account(app.state.settings) for _ in range(3)]
    victim = add_account(app.state.settings)
    with TestClient(app, client=("192.0.2.3", 1000)) as attacker:
        for account in sprayed:
            assert (
                attacker.post(LOGIN, json=credentials(account, "guess-guess-guess")).status_code
                == 401
            )
        refused = attacker.post(LOGIN, json=credentials(victim))
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
    with TestClient(app, client=("192.0.2.4", 1000)) as someone_else:
        assert someone_else.post(LOGIN, json=credentials(victim)).status_code == 200


def test_idle_sessions_end_and_use_slides_the_idle_expiry(
    app: FastAPI, client: TestClient, viewer: Account
) -> None:
    login = log_in(client, viewer)
    idle = timedelta(minutes=app.state.settings.session_idle_minutes)
    now = datetime.now(UTC)
    move_session(app, login, last_seen_at=now - idle + timedelta(minutes=2))
    assert me_status(app, login) == 200
    assert stored_session(app, login).last_seen_at > now - timedelta(seconds=30)
    move_session(app, login, last_seen_at=now - idle - timedelta(seconds=1))
    assert me_status(app, login) == 401


def test_sessions_end_at_their_absolute_expiry_however_busy(
    app: FastAPI, client: TestClient, viewer: Account
) -> None:
    login = log_in(client, viewer)
    now = datetime.now(UTC)
    move_session(app, login, created_at=now - timedelta(hours=13), expires_at=now)
    assert me_status(app, login) == 401


def test_password_change_ends_every_session(
    app: FastAPI, client: TestClient, viewer: Account
) -> None:
    first, second = log_in(client, viewer), log_in(client, viewer)
    new_password = "a much better passphrase"
    with signed_in(app, first) as planner:
        for body, status, detail in [
            ({"current_password": "not it at all", "new_password": new_password}, 403, "wrong"),
            ({"current_password": viewer.password, "new_password": "short"}, 422, "at least 12"),
            ({"current_password": viewer.password, "new_password": viewer.email}, 422, "e-mail"),
        ]:
            refused = planner.post(PASSWORD, json=body)
            assert (refused.status_code, detail in refused.text) == (status, True), refused.text
        assert me_status(app, second) == 200
        changed = planner.post(
            PASSWORD, json={"current_password": viewer.password, "new_password": new_password}
        )
    assert changed.status_code == 200, changed.text
    fresh = Login(changed.cookies[SESSION_COOKIE], changed.json()["csrf_token"])
    assert fresh.cookie != first.cookie
    assert fresh.csrf_token != first.csrf_token
    assert (me_status(app, first), me_status(app, second), me_status(app, fresh)) == (401, 401, 200)
    assert client.post(LOGIN, json=credentials(viewer)).status_code == 401
    assert client.post(LOGIN, json=credentials(viewer, new_password)).status_code == 200
    with app.state.session_factory() as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "user.password", AuditEvent.target == viewer.email
            )
        ).one()
    assert (event.actor, event.details) == (viewer.email, {"sessions_ended": 2})
    assert new_password not in str(event.details)


def test_cookie_changes_need_the_csrf_token(app: FastAPI, client: TestClient) -> None:
    editor = log_in(client, add_account(app.state.settings, "editor"))
    with TestClient(app, cookies=editor.cookies) as browser:
        for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": editor.csrf_token[:-1]}):
            response = browser.post("/api/v1/admin/sites", json=site_body(), headers=headers)
            assert response.status_code == 403, headers
            assert "X-CSRF-Token" in response.json()["detail"]
        assert browser.post(LOGOUT).status_code == 403
        assert browser.get(ME).status_code == 200
        created = browser.post("/api/v1/admin/sites", json=site_body(), headers=editor.headers)
        assert created.status_code == 201, created.text


def test_a_disabled_account_is_locked_out_at_once(
    app: FastAPI, client: TestClient, viewer: Account
) -> None:
    login = log_in(client, viewer)
    set_user(app, viewer, disabled=True)
    assert me_status(app, login) == 401
    refused = client.post(LOGIN, json=credentials(viewer))
    assert (refused.status_code, refused.json()) == (403, {"detail": "this account is disabled"})
    assert (
        client.post(LOGIN, json=credentials(viewer, "wrong password, long enough")).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("role", "site_status", "admin_token_status"),
    [("viewer", 403, 403), ("editor", 201, 403), ("admin", 201, 201)],
)
def test_roles_decide_what_a_session_may_change(
    app: FastAPI, client: TestClient, role: Any, site_status: int, admin_token_status: int
) -> None:
    login = log_in(client, add_account(app.state.settings, role))
    with signed_in(app, login) as planner:
        assert planner.get("/api/v1/sites").status_code == 200
        assert planner.get("/api/v1/devices/health").status_code == 200
        site = planner.post("/api/v1/admin/sites", json=site_body())
        assert site.status_code == site_status, site.text
        token = planner.post("/api/v1/admin/admin-tokens", json={"name": f"by {role}"})
        assert token.status_code == admin_token_status, token.text


def test_an_admin_token_is_an_unrestricted_admin(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    me = client.get(ME, headers=admin_headers).json()
    assert (me["role"], me["site_ids"], me["csrf_token"], me["via"]) == (
        "admin",
        None,
        None,
        "token",
    )
    assert me["email"].startswith("token:")
    refused = client.post(
        PASSWORD, json={"current_password": "x", "new_password": "y" * 12}, headers=admin_headers
    )
    assert refused.status_code == 403
    assert (
        client.post("/api/v1/admin/sites", json=site_body(), headers=admin_headers).status_code
        == 201
    )


def test_outdated_hashes_are_upgraded_at_login(
    app: FastAPI, client: TestClient, viewer: Account
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    set_user(app, viewer, password_hash=weak.hash(viewer.password))
    assert client.post(LOGIN, json=credentials(viewer)).status_code == 200
    with app.state.session_factory() as session:
        stored = session.scalars(select(User.password_hash).where(User.email == viewer.email)).one()
    assert stored is not None
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert client.post(LOGIN, json=credentials(viewer)).status_code == 200


def test_config_offers_single_sign_on_only_when_configured(database_url: str) -> None:
    plain = create_app(settings_for(database_url))
    sso = create_app(
        settings_for(
            database_url,
            oidc_issuer="https://id.example.org",
            oidc_client_id="tally",
            oidc_button_label="City account",
        )
    )
    with TestClient(plain) as client:
        assert client.get("/api/v1/auth/config").json() == {"password_login": True, "sso": None}
        assert client.get("/api/v1/auth/oidc/login", follow_redirects=False).status_code == 404
    with TestClient(sso) as client:
        assert client.get("/api/v1/auth/config").json()["sso"] == {
            "label": "City account",
            "login_url": "/api/v1/auth/oidc/login",
        }


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_account_commands(app: FastAPI, client: TestClient, database_url: str) -> None:
    env = os.environ | {
        "TALLY_DATABASE_URL": database_url,
        "TALLY_ENVIRONMENT": "test",
        "TALLY_SECRET_KEY": app.state.settings.secret_key,
    }
    site = register(app.state.settings, public=False).site
    email = f"cli-{uuid.uuid4().hex[:8]}@example.org"
    account = Account(email, "piped passphrase 1", "editor")
    made = cli(
        env,
        *("add-user", "--email", email.upper(), "--name", "Cli", "--role", "editor"),
        *("--site", site),
        stdin=f"{account.password}\n",
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout == ""
    login = log_in(client, account)
    assert client.get(ME).json()["site_ids"] == [site]
    listed = cli(env, "list-users").stdout
    assert f"{email}\teditor\tCli\t{site}\t" in listed
    generated = cli(env, "add-user", "--email", f"gen-{email}", "--name", "G", "--role", "viewer")
    password = generated.stdout.strip()
    assert generated.returncode == 0
    assert len(password) >= 12
    assert log_in(client, Account(f"gen-{email}", password, "viewer"))
    for args, stdin, message in [
        (
            ("add-user", "--email", email, "--name", "x", "--role", "viewer"),
            "x" * 12,
            "already exists",
        ),
        (
            ("add-user", "--email", f"short-{email}", "--name", "x", "--role", "viewer"),
            "short\n",
            "at least 12",
        ),
        (
            (
                "add-user",
                "--email",
                f"s-{email}",
                "--name",
                "x",
                "--role",
                "viewer",
                "--site",
                "no-site",
            ),
            "",
            "no-site",
        ),
        (("set-password", "--email", "nobody@example.org"), "y" * 12, "no account"),
    ]:
        failed = cli(env, *args, stdin=stdin)
        assert failed.returncode == 1, args
        assert failed.stderr.startswith("error: "), failed.stderr
        assert message in failed.stderr
        assert failed.stderr.count("\n") == 1
    changed = cli(env, "set-password", "--email", email, stdin="changed passphrase 2\n")
    assert changed.returncode == 0, changed.stderr
    assert me_status(app, login) == 401
    assert log_in(client, Account(email, "changed passphrase 2", "editor"))
    with app.state.session_factory() as session:
        actions = session.execute(
            select(AuditEvent.action, AuditEvent.actor).where(AuditEvent.target == email)
        ).all()
    assert sorted(actions) == [("user.create", "cli"), ("user.password", "cli")]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """`python -m api serve` on a fresh database of each kind."""
    if request.param == "sqlite":
        with running_server(tmp_path) as running:
            yield running
        return
    with (
        scratch_postgres_database("tally_auth") as url,
        running_server(tmp_path, database_url=url) as running,
    ):
        yield running


def test_login_shows_private_sites_on_a_real_server_until_logout(server: Any) -> None:
    with server.admin() as admin:
        admin.post(
            "/api/v1/admin/sites", json=site_body(id="hidden-st", public=False)
        ).raise_for_status()
    password = server.add_user("planner@example.org", "viewer")
    with httpx.Client(base_url=server.base_url) as anonymous:
        assert anonymous.get("/api/v1/sites").status_code == 401
        assert (
            anonymous.post(
                LOGIN, json={"email": "planner@example.org", "password": "nope"}
            ).status_code
            == 401
        )
    with server.log_in("planner@example.org", password) as planner:
        assert "hidden-st" in {s["id"] for s in planner.get("/api/v1/sites").json()["sites"]}
        edit = site_body(id="other-st")
        assert planner.post("/api/v1/admin/sites", json=edit).status_code == 403, "a viewer"
        csrf = planner.headers.pop("X-CSRF-Token")
        assert planner.post(LOGOUT).status_code == 403, "a cookie alone cannot log out"
        planner.headers["X-CSRF-Token"] = csrf
        cookie = planner.cookies[SESSION_COOKIE]
        assert planner.post(LOGOUT).status_code == 204
        assert planner.get("/api/v1/sites").status_code == 401
    with httpx.Client(base_url=server.base_url, cookies={SESSION_COOKIE: cookie}) as replay:
        assert replay.get("/api/v1/sites").status_code == 401
    with server.admin() as admin:
        events = admin.get("/api/v1/admin/audit").json()["events"]
    oldest_first = [(e["action"], e["actor"].split(":")[0], e["target"]) for e in events[::-1]]
    assert oldest_first[1:] == [
        ("site.create", "token", "hidden-st"),
        ("user.create", "cli", "planner@example.org"),
    ]
    assert oldest_first[0][:2] == ("admin_token.create", "cli"), "the server's own admin token"
