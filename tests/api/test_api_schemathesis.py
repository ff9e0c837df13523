"""Schemathesis against the OpenAPI schema: no 5xx, responses match the schema."""

from __future__ import annotations

import pytest
import schemathesis
from api_testkit import settings_for
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def api_schema(database_url: str) -> object:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings_for(database_url)))


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )
