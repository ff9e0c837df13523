"""Schemathesis against the OpenAPI schema: no 5xx, responses match the schema.

Every operation in the schema is generated (device, auth, planner, open data, admin, health).
Device operations are called with a device token and the others with an admin token (which
replaces the random bearer value Schemathesis generates for the bearer scheme), so the fuzzed
input reaches validation and the handlers instead of stopping at a 401 (the 401 path is
covered by test_hostile_input.py and test_auth.py). Auth operations get a login session
cookie and its CSRF token instead.
"""

from __future__ import annotations

import pytest
import schemathesis
from api_testkit import Login, Registered, add_account, log_in, register, settings_for
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.db import make_engine, make_session_factory, session_scope
from api.services import tokens
from api.services.login import SESSION_COOKIE
from api.settings import Settings

schema = schemathesis.pytest.from_fixture("api_schema")
DEVICE_PATHS = frozenset(
    {"/api/v1/reports", "/api/v1/heartbeat", "/api/v1/device/config", "/api/v1/device/scene-map"}
)
AUTH_PREFIX = "/api/v1/auth/"


@pytest.fixture(scope="module")
def app_settings(database_url: str) -> Settings:
    return settings_for(database_url)


@pytest.fixture
def api_schema(app_settings: Settings) -> object:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings))


@pytest.fixture(scope="module")
def device(app_settings: Settings) -> Registered:
    return register(app_settings)


@pytest.fixture(scope="module")
def admin_token(app_settings: Settings) -> str:
    engine = make_engine(app_settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            issued = tokens.issue_token(
                session, app_settings.secret_key, "admin", None, "schemathesis"
            )
    finally:
        engine.dispose()
    return issued.token


@pytest.fixture(scope="module")
def auth_login(app_settings: Settings) -> Login:
    with TestClient(create_app(app_settings)) as client:
        return log_in(client, add_account(app_settings, "viewer"))


def session_headers(login: Login) -> dict[str, str]:
    """The session cookie and CSRF token as request headers."""
    return {"Cookie": f"{SESSION_COOKIE}={login.cookie}", **login.headers}


def auth_for(path: str, device: Registered, admin_token: str, auth: Login) -> dict[str, str]:
    """The credentials an operation needs, so generated input gets past authentication."""
    if path in DEVICE_PATHS:
        return device.auth
    if path.startswith(AUTH_PREFIX):
        return session_headers(auth)
    return {"Authorization": f"Bearer {admin_token}"}


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(
    case: schemathesis.Case,
    device: Registered,
    admin_token: str,
    auth_login: Login,
) -> None:
    case.call_and_validate(
        headers=auth_for(case.operation.path, device, admin_token, auth_login),
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
