"""Schemathesis against the OpenAPI schema: no 5xx, responses match the schema.

Every operation in the schema is generated (device, planner, open data, admin, health). Device
and admin operations are called with a real token of their kind, so the fuzzed bodies reach
validation and the handlers instead of stopping at a 401 (the 401 path is covered by
test_hostile_input.py).
"""

from __future__ import annotations

import pytest
import schemathesis
from api_testkit import Registered, register, settings_for
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
from api.settings import Settings

schema = schemathesis.pytest.from_fixture("api_schema")
DEVICE_PATHS = frozenset({"/api/v1/reports", "/api/v1/heartbeat"})
ADMIN_PREFIX = "/api/v1/admin/"


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


def auth_for(path: str, device: Registered, admin_token: str) -> dict[str, str]:
    """The token an operation needs, so generated input gets past authentication."""
    if path in DEVICE_PATHS:
        return device.auth
    if path.startswith(ADMIN_PREFIX):
        return {"Authorization": f"Bearer {admin_token}"}
    return {}


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(
    case: schemathesis.Case, device: Registered, admin_token: str
) -> None:
    case.call_and_validate(
        headers=auth_for(case.operation.path, device, admin_token),
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
