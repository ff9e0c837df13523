"""Fixtures: a migrated SQLite and PostgreSQL database each, apps on them, registered cameras."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from accounts_testkit import admin_token_headers
from api_testkit import Login, Registered, add_account, log_in, register, settings_for, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.databases import migrated_database, scratch_postgres_database


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the parametrized kind ('sqlite' or 'postgresql')."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tally.db'}"
        return
    with scratch_postgres_database("tally_test") as url:
        yield url


def backend_params() -> list[Any]:
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=backend_params())
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database shared by a session's tests (each test registers its own ids)."""
    sqlite_file = tmp_path_factory.mktemp("db") / "tally.db"
    with migrated_database(request.param, sqlite_file, "tally_test") as url:
        yield url


@pytest.fixture(scope="session")
def app(database_url: str) -> FastAPI:
    return create_app(settings_for(database_url))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An anonymous client (device calls carry their own bearer token)."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def viewer_login(app: FastAPI) -> Login:
    """One login session of an unrestricted viewer, shared by a session's planner reads."""
    with TestClient(app) as anonymous:
        return log_in(anonymous, add_account(app.state.settings, "viewer"))


@pytest.fixture
def planner(app: FastAPI, viewer_login: Login) -> Iterator[TestClient]:
    """A client signed in as an unrestricted viewer (cookie and CSRF token on every request)."""
    with signed_in(app, viewer_login) as test_client:
        yield test_client


@pytest.fixture
def admin_headers(app: FastAPI) -> dict[str, str]:
    """Authorization for an admin token: an unrestricted admin."""
    return admin_token_headers(app)


@pytest.fixture
def registered(app: FastAPI) -> Registered:
    return register(app.state.settings)
