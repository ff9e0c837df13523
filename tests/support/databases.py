"""Scratch databases on the local PostgreSQL server, for tests and benchmarks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from api import migrate

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_postgres_database(prefix: str, *, migrated: bool = False) -> Iterator[str]:
    """A new database (SQLAlchemy URL), optionally migrated; dropped afterwards, even when
    sessions are still connected."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        if migrated:
            migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_database(backend: str, sqlite_file: Path, prefix: str) -> Iterator[str]:
    """A migrated database of the given kind ('sqlite' at ``sqlite_file``, or 'postgresql')."""
    if backend == "sqlite":
        url = f"sqlite:///{sqlite_file}"
        migrate.upgrade(url)
        yield url
        return
    with scratch_postgres_database(prefix, migrated=True) as url:
        yield url
