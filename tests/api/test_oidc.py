"""Single sign-on against a real OpenID provider and a real API server (SQLite, PostgreSQL).

The provider is oidc-provider-mock (an authlib + Flask OpenID provider) on a loopback port,
requiring a nonce; the API is `python -m api serve` configured with it as issuer. The test
plays the browser with httpx: it follows the redirect to the provider, posts the provider's
authorization form for a subject whose claims it set beforehand, follows the redirect back
to the callback, and ends up with a login session whose role comes from the claim.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import oidc_provider_mock
import pytest
from werkzeug.serving import make_server

from api.services.login import SESSION_COOKIE
from tests.support.tally_api import TallyServer, running_server

CLIENT_ID = "tally-dashboard"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The OpenID provider's issuer URL."""
    server = make_server("127.0.0.1", 0, oidc_provider_mock.app(require_nonce=True), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture(scope="module")
def api(
    provider: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TallyServer]:
    settings = {
        "TALLY_OIDC_ISSUER": provider,
        "TALLY_OIDC_CLIENT_ID": CLIENT_ID,
        "TALLY_OIDC_CLIENT_SECRET": "provider-accepts-any-secret",
        "TALLY_OIDC_ROLE_CLAIM": "tally_roles",
    }
    with running_server(tmp_path_factory.mktemp("oidc"), database_url, settings) as server:
        yield server


def person(provider: str, sub: str, **claims: Any) -> None:
    """What the provider will say about `sub` when it signs in."""
    response = httpx.put(f"{provider}/users/{quote(sub)}", json=claims)
    assert response.status_code == 204, response.text


def browser(api: TallyServer) -> httpx.Client:
    """A cookie-keeping client that, like a script reading redirects, follows none itself."""
    return httpx.Client(base_url=api.base_url, timeout=30)


def sign_on(api: TallyServer, browser: httpx.Client, provider: str, sub: str) -> httpx.Response:
    """The browser's round trip to the provider and back; returns the callback's answer."""
    start = browser.get("/api/v1/auth/oidc/login")
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(f"{provider}/oauth2/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert {"state", "nonce", "code_challenge"} <= set(query)
    assert "code_verifier" not in query
    assert query["redirect_uri"] == [f"{api.base_url}/api/v1/auth/oidc/callback"]
    granted = httpx.post(authorize, data={"sub": sub})
    assert granted.status_code == 302, granted.text
    callback = granted.headers["location"]
    assert callback.startswith(f"{api.base_url}/api/v1/auth/oidc/callback?")
    return browser.get(callback)


def test_single_sign_on_maps_the_role_claim(api: TallyServer, provider: str) -> None:
    person(provider, "alice", email="Alice@City.example", name="Alice A", tally_roles="editor")
    with browser(api) as alices:
        landed = sign_on(api, alices, provider, "alice")
        assert landed.status_code == 302
        assert landed.headers["location"] == "/"
        assert SESSION_COOKIE in alices.cookies
        me = alices.get("/api/v1/auth/me").json()
        assert {k: me[k] for k in ("email", "display_name", "role", "via")} == {
            "email": "alice@city.example",
            "display_name": "Alice A",
            "role": "editor",
            "via": "session",
        }
        assert alices.get("/api/v1/sites").status_code == 200
    person(provider, "alice", email="alice@city.example", name="Alice A", tally_roles=["viewer"])
    with browser(api) as alices:
        sign_on(api, alices, provider, "alice")
        assert alices.get("/api/v1/auth/me").json()["role"] == "viewer"
    with api.admin() as admin:
        accounts = admin.get("/api/v1/admin/users").json()["users"]
    (alice,) = [u for u in accounts if u["email"] == "alice@city.example"]
    assert (alice["role"], alice["sso"]) == ("viewer", True)


def test_no_role_claim_and_no_default_role_is_refused(api: TallyServer, provider: str) -> None:
    person(provider, "bob", email="bob@city.example", name="Bob", department="roads")
    with browser(api) as bobs:
        landed = sign_on(api, bobs, provider, "bob")
        assert landed.status_code == 302
        location = landed.headers["location"]
        assert location.startswith("/?login_error=")
        assert "tally_roles" in parse_qs(urlsplit(location).query)["login_error"][0]
        assert SESSION_COOKIE not in bobs.cookies
        assert bobs.get("/api/v1/auth/me").status_code == 401


def test_a_callback_that_this_browser_did_not_start_is_refused(
    api: TallyServer, provider: str
) -> None:
    """A forged state, and a genuine answer replayed in another browser, sign nobody in."""
    person(provider, "carol", email="carol@city.example", tally_roles="admin")
    with browser(api) as other:
        start = other.get("/api/v1/auth/oidc/login")
        granted = httpx.post(start.headers["location"], data={"sub": "carol"})
        callback = urlsplit(granted.headers["location"])
        forged = parse_qs(callback.query) | {"state": ["not-the-state-we-sent"]}
        landed = other.get(callback.path, params={k: v[0] for k, v in forged.items()})
        assert landed.headers["location"].startswith("/?login_error=")
        assert SESSION_COOKIE not in other.cookies
    with browser(api) as stranger:
        landed = stranger.get(callback.path + "?" + callback.query)
        assert landed.headers["location"].startswith("/?login_error=")
        assert SESSION_COOKIE not in stranger.cookies
