"""Security headers: a strict CSP everywhere (its own, hashed one for /docs), nothing private
cached, open data still publicly cacheable; and the pages still run under the policy in
headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from api_testkit import Registered, add_account, log_in, settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, ConsoleMessage, Page

from api import migrate
from api.app import create_app
from api.db import session_scope
from api.services.login import SESSION_COOKIE
from api.services.tokens import issue_token
from tests.support.tally_api import free_port
from tests.support.waiting import wait_until

FIXED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
PRIVATE = "private, no-store"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def directives(policy: str) -> dict[str, list[str]]:
    parsed = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parsed}


def assert_strict_policy(policy: str, img_extra: list[str] | None = None) -> None:
    found = directives(policy)
    assert found["default-src"] == ["'self'"]
    assert found["script-src"][0] == "'self'"
    assert all(s.startswith("'sha256-") for s in found["script-src"][1:]), policy
    assert found["object-src"] == ["'none'"]
    assert found["base-uri"] == ["'none'"]
    assert found["frame-ancestors"] == ["'none'"]
    assert found["form-action"] == ["'self'"]
    assert found["img-src"] == ["'self'", "data:", *(img_extra or [])]
    assert found["style-src"] == ["'self'", "'unsafe-inline'"]


def assert_security_headers(headers: Any, context: object) -> None:
    for name, value in FIXED.items():
        assert headers.get(name) == value, (context, name)
    assert_strict_policy(headers["content-security-policy"])


def vary(headers: Any) -> set[str]:
    return {token.strip().lower() for token in headers.get("vary", "").split(",")}


@pytest.fixture
def credentials(app: FastAPI, client: TestClient, registered: Registered) -> dict[str, Any]:
    """Request keyword arguments for each kind of caller."""
    with session_scope(app.state.session_factory) as session:
        admin = issue_token(session, app.state.settings.secret_key, "admin", None, "headers")
    viewer = log_in(client, add_account(app.state.settings, "viewer"))
    client.cookies.clear()
    return {
        "anonymous": {},
        "admin": {"headers": {"Authorization": f"Bearer {admin.token}"}},
        "device": {"headers": registered.auth},
        "wrong bearer": {"headers": {"Authorization": "Bearer not-a-token"}},
        "viewer cookie": {"cookies": viewer.cookies},
        "stale cookie": {"cookies": {SESSION_COOKIE: "gone.gone"}},
    }


# (method, path, caller, expected status, expected Cache-Control: None = none set)
CASES = [
    ("GET", "/", "anonymous", 200, None),
    ("GET", "/", "viewer cookie", 200, PRIVATE),
    ("GET", "/docs", "anonymous", 200, None),
    ("GET", "/openapi.json", "anonymous", 200, None),
    ("GET", "/healthz", "anonymous", 200, None),
    ("GET", "/healthz", "admin", 200, PRIVATE),
    ("GET", "/api/v1/meta", "anonymous", 200, PRIVATE),
    ("GET", "/api/v1/sites", "anonymous", 401, PRIVATE),
    ("GET", "/api/v1/sites", "admin", 200, PRIVATE),
    ("GET", "/api/v1/sites", "viewer cookie", 200, PRIVATE),
    ("GET", "/api/v1/sites", "stale cookie", 401, PRIVATE),
    ("GET", "/api/v1/sites/{site}", "admin", 200, PRIVATE),
    ("GET", "/api/v1/counts/series?site={site}", "viewer cookie", 200, PRIVATE),
    ("GET", "/api/v1/devices/health", "admin", 200, PRIVATE),
    ("GET", "/api/v1/auth/me", "viewer cookie", 200, PRIVATE),
    ("GET", "/api/v1/auth/me", "anonymous", 401, PRIVATE),
    ("GET", "/api/v1/admin/users", "admin", 200, PRIVATE),
    ("GET", "/api/v1/admin/users", "viewer cookie", 403, PRIVATE),
    ("POST", "/api/v1/reports", "device", 422, PRIVATE),
    ("POST", "/api/v1/reports", "wrong bearer", 401, PRIVATE),
    ("GET", "/api/v1/open/sites.json", "anonymous", 200, "public, max-age=300"),
    ("GET", "/api/v1/open/sites.json", "admin", 200, "public, max-age=300"),
    ("GET", "/api/v1/open/sites.csv", "viewer cookie", 200, "public, max-age=300"),
    ("GET", "/api/v1/open/catalog.json", "wrong bearer", 200, "public, max-age=300"),
    ("GET", "/api/v1/open/sites/{site}/counts.json", "anonymous", 200, "public, max-age=300"),
    ("GET", "/api/v1/open/sites/nowhere/counts.json", "anonymous", 404, None),
    ("GET", "/api/v1/open/sites/nowhere/counts.json", "admin", 404, PRIVATE),
]


@pytest.mark.parametrize(("method", "path", "caller", "code", "caching"), CASES)
def test_headers(
    client: TestClient,
    registered: Registered,
    credentials: dict[str, Any],
    method: str,
    path: str,
    caller: str,
    code: int,
    caching: str | None,
) -> None:
    url = path.format(site=registered.site)
    given = credentials[caller]
    client.cookies.update(given.get("cookies", {}))
    response = client.request(
        method, url, json={} if method == "POST" else None, headers=given.get("headers")
    )
    assert response.status_code == code, response.text
    assert_security_headers(response.headers, url)
    assert response.headers.get("cache-control") == caching
    if caching == PRIVATE:
        assert {"cookie", "authorization"} <= vary(response.headers)


def test_every_operation_gets_the_headers(client: TestClient, app: FastAPI) -> None:
    """Every documented operation, anonymous and with a bearer: the table cannot miss a
    router added later."""
    problems = []
    for path, operations in app.openapi()["paths"].items():
        url = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                response = client.request(method.upper(), url, headers=headers)
                caching = response.headers.get("cache-control", "")
                private_api = path.startswith("/api/") and not path.startswith("/api/v1/open/")
                if private_api or headers:
                    expected_private = not (
                        path.startswith("/api/v1/open/") and "public" in caching
                    )
                    if expected_private and (
                        caching != PRIVATE or "authorization" not in vary(response.headers)
                    ):
                        problems.append((method, path, bool(headers), caching))
                try:
                    assert_security_headers(response.headers, (method, path))
                except AssertionError as error:
                    problems.append((method, path, bool(headers), str(error)))
    assert problems == []


def test_docs_policy_allows_exactly_its_inline_script(client: TestClient) -> None:
    response = client.get("/docs")
    scripts = INLINE_SCRIPT.findall(response.text)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    found = directives(response.headers["content-security-policy"])
    assert found["script-src"] == ["'self'", f"'sha256-{digest}'"]


def test_the_map_tile_host_may_serve_images(database_url: str) -> None:
    template = "https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png"
    app = create_app(settings_for(database_url, map_tile_url=template))
    with TestClient(app) as client:
        response = client.get("/healthz")
    assert_strict_policy(
        response.headers["content-security-policy"], ["https://*.tile.openstreetmap.org"]
    )


def test_an_oversized_body_is_refused_with_the_headers(client: TestClient) -> None:
    """The policy is set outside the body-size limit, so its 413 carries the headers too."""
    response = client.post(
        "/api/v1/reports", content=b"x" * (8 * 1024 * 1024 + 1), headers={"X": "y"}
    )
    assert response.status_code == 413
    assert_security_headers(response.headers, "413")
    assert response.headers["cache-control"] == PRIVATE


def test_https_responses_pin_the_browser_to_https(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver") as secure:
        assert secure.get("/healthz").headers["strict-transport-security"] == "max-age=31536000"
    with TestClient(app) as plain:
        assert "strict-transport-security" not in plain.get("/healthz").headers


@pytest.mark.parametrize(("environment", "secure"), [("test", False), ("production", True)])
def test_the_session_cookie_is_secure_in_production_even_over_plain_http(
    database_url: str, environment: str, secure: bool
) -> None:
    """Behind a TLS proxy the API may see plain HTTP; production cookies stay Secure."""
    settings = settings_for(database_url).model_copy(update={"environment": environment})
    app = create_app(settings)
    account = add_account(settings)
    with TestClient(app) as client:
        response = client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": account.password}
        )
    assert response.status_code == 200
    assert ("secure" in response.headers["set-cookie"].lower()) is secure


# --- in a real browser ------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on real uvicorn (loopback, a migrated SQLite file), in a thread."""
    url = f"sqlite:///{tmp_path_factory.mktemp('csp') / 'tally.db'}"
    migrate.upgrade(url)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings_for(url)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20, "uvicorn to start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def load(
    browser: Browser, base_url: str, path: str, ready: Callable[[Page], object]
) -> tuple[list[str], list[str], object]:
    """Open `path`, then `ready(page)`: (console errors, scripts not served, what ready gave).

    `ready` must not make the page evaluate a string (Playwright's wait_for_function does,
    and the policy refuses it).
    """
    errors: list[str] = []
    failed: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page = browser.new_page()
    try:
        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "response",
            lambda r: (
                failed.append(r.url)
                if r.request.resource_type == "script" and r.status != 200
                else None
            ),
        )
        page.goto(base_url + path, wait_until="networkidle")
        value = ready(page)
    finally:
        page.close()
    return errors, failed, value


@pytest.mark.browser
def test_docs_run_under_their_policy(browser: Browser, served: str) -> None:
    errors, failed, title = load(
        browser,
        served,
        "/docs",
        lambda page: page.locator(".swagger-ui .info .title").text_content(timeout=15_000),
    )
    assert "Tally API" in str(title)
    assert failed == []
    assert [e for e in errors if "Content Security Policy" in e] == []


@pytest.mark.browser
def test_dashboard_scripts_run_under_the_policy(browser: Browser, served: str) -> None:
    """Leaflet (a classic script) and the module entry point load; nothing is refused."""
    errors, failed, leaflet = load(
        browser, served, "/", lambda page: page.evaluate("window.L?.version")
    )
    assert leaflet
    assert failed == []
    assert [e for e in errors if "Content Security Policy" in e] == []
