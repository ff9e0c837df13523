"""Fixtures: a migrated SQLite and PostgreSQL database each, apps on them, registered cameras."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from api_testkit import Registered, register, settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import migrate
from api.app import create_app

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def create_postgres_database() -> str:
    """A new empty database on the local server; returns its name."""
    name = f"tally_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_postgres_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the parametrized kind ('sqlite' or 'postgresql')."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tally.db'}"
        return
    name = create_postgres_database()
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        drop_postgres_database(name)


def backend_params() -> list[Any]:
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=backend_params())
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database shared by a session's tests (each test registers its own ids)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'tally.db'}"
        migrate.upgrade(url)
        yield url
        return
    name = create_postgres_database()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture(scope="session")
def app(database_url: str) -> FastAPI:
    return create_app(settings_for(database_url))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def registered(app: FastAPI) -> Registered:
    return register(app.state.settings)
